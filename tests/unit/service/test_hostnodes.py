"""``<numatune>`` nodesets are checked against the host's NUMA nodes at define."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.domain import Domain
from pyvirt.service.domain.hostnodes import check_numatune, host_nodes

XML = """<domain type='qemu'><name>n</name><memory>65536</memory><vcpu>2</vcpu>
<cpu><numa><cell id='0' cpus='0' memory='32768'/><cell id='1' cpus='1' memory='32768'/></numa></cpu>
<numatune>{}</numatune><os><type>hvm</type></os></domain>"""


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        ("<memory mode='strict' nodeset='999'/>", "<numatune>/<memory>: NUMA node 999"),
        (
            "<memnode cellid='0' mode='strict' nodeset='0-8'/>"
            "<memnode cellid='1' mode='strict' nodeset='0'/>",
            "<numatune>/<memnode>[1]: NUMA node 4",
        ),
    ],
)
def test_missing_host_node_refused(tune: str, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=re.escape(message)):
        check_numatune(Domain.from_xml(XML.format(tune)), {0, 1, 2, 3})


def test_present_nodes_pass(tmp_path: Path) -> None:
    check_numatune(Domain.from_xml(XML.format("<memory nodeset='0-3'/>")), {0, 1, 2, 3})
    online = tmp_path / "online"
    online.write_text("0-1,3\n")
    assert host_nodes(online) == {0, 1, 3}
    assert host_nodes(tmp_path / "absent") is None
