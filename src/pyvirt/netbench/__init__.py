"""``pyvirt bench net``: the seed's four traffic scenarios measured with iperf3.

:mod:`pyvirt.netbench.hosts` simulates hosts as network namespaces with their own pyvirt state
roots; :mod:`pyvirt.netbench.scenarios` builds each scenario with pyvirt networks, runs iperf3
between two tiny-net guests and tears everything down; :mod:`pyvirt.netbench.report` prints the
comparison table.
"""
