"""CPU baseline and compare on fixed inputs (a small hand-written catalog of models)."""

from __future__ import annotations

import pytest
from lxml import etree

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.host.cpu_features import (
    Catalog,
    CpuDef,
    baseline,
    compare,
    cpu_features,
    host_features,
    parse_cpus,
    qemu_feature_name,
)

OLD = frozenset({"fpu", "sse2", "pni"})
MID = OLD | {"sse4.1", "sse4.2", "popcnt"}
NEW = MID | {"avx", "avx2"}
CATALOG = Catalog(
    features={
        "Old": OLD, "Old-v1": OLD, "Mid": MID, "Mid-v1": MID, "Mid-v2": MID | {"aes"},
        "New": NEW, "Amd": MID | {"sse4a"}, "max": NEW | {"la57"}, "base": frozenset(),
    },
    vendors={"Old": "GenuineIntel", "Mid": "GenuineIntel", "Mid-v1": "GenuineIntel",
             "Mid-v2": "GenuineIntel", "New": "GenuineIntel", "Amd": "AuthenticAMD"},
    aliases={"Old": "Old-v1", "Mid": "Mid-v1"},
    known=NEW | {"aes", "sse4a", "la57", "hypervisor", "x2apic", "tsc-deadline", "lahf-lm"},
)  # fmt: skip


def cpus(xml: str) -> list[CpuDef]:
    return parse_cpus(etree.fromstring(xml))


@pytest.mark.parametrize(
    ("name", "qemu"),
    [("sse4_1", "sse4.1"), ("lahf_lm", "lahf-lm"), ("tsc_deadline_timer", "tsc-deadline"),
     ("avx512_bf16", "avx512-bf16"), ("pclmuldq", "pclmulqdq"), ("avx2", "avx2")],
)  # fmt: skip
def test_feature_names_are_qemus(name: str, qemu: str) -> None:
    assert qemu_feature_name(name) == qemu


def test_host_features_keep_what_qemu_knows_plus_the_emulated() -> None:
    got = host_features(["fpu", "sse2", "pni", "sse4_1", "constant_tsc", "lahf_lm"], CATALOG)
    assert got == {"fpu", "sse2", "pni", "sse4.1", "lahf-lm", "hypervisor", "x2apic",
                   "tsc-deadline"}  # fmt: skip


def test_parse_takes_every_cpu_but_numa_cells_cpus() -> None:
    xml = """<capabilities><host><cpu><arch>x86_64</arch><model>Mid</model>
      <vendor>Intel</vendor><feature name='avx'/></cpu>
      <topology><cells><cell id='0'><cpus num='1'><cpu id='0'/></cpus></cell></cells>
      </topology></host></capabilities>"""
    (cpu,) = cpus(xml)
    assert (cpu.model, cpu.vendor, cpu.arch) == ("Mid", "Intel", "x86_64")
    assert cpu.policies == {"avx": "require"}
    with pytest.raises(InvalidConfigError, match="no <cpu>"):
        cpus("<domain/>")


def test_features_of_a_cpu_apply_policies() -> None:
    (cpu,) = cpus(
        "<cpu><model>Mid</model><feature policy='require' name='avx'/>"
        "<feature policy='disable' name='popcnt'/><feature policy='optional' name='aes'/></cpu>"
    )
    assert cpu_features(cpu, CATALOG) == (MID | {"avx"}) - {"popcnt"}
    with pytest.raises(InvalidConfigError, match="'Nope' is not known"):
        cpu_features(CpuDef(model="Nope"), CATALOG)


def test_baseline_is_the_newest_common_model_plus_common_features() -> None:
    two = cpus(
        "<cpus><cpu><model>New</model><feature name='aes'/></cpu>"
        "<cpu><model>Mid</model><feature policy='require' name='avx'/>"
        "<feature policy='require' name='aes'/></cpu></cpus>"
    )
    got = baseline(two, CATALOG)
    # both have aes: Mid-v2 (Mid + aes) has more features than Mid; avx goes on top
    assert (got.model, got.vendor, got.features) == ("Mid-v2", "GenuineIntel", ("avx",))
    assert got.to_xml() == (
        "<cpu mode='custom' match='exact'>\n"
        "  <model fallback='forbid'>Mid-v2</model>\n"
        "  <vendor>Intel</vendor>\n"
        "  <feature policy='require' name='avx'/>\n"
        "</cpu>\n"
    )


def test_baseline_prefers_the_unversioned_name_and_never_host_models() -> None:
    got = baseline([CpuDef(model="New"), CpuDef(model="Mid")], CATALOG)
    assert (got.model, got.features) == ("Mid", ())
    alone = baseline([CpuDef(policies=dict.fromkeys(NEW | {"la57"}, "require"))], CATALOG)
    assert alone.model == "New" and alone.features == ("la57",)


def test_baseline_respects_the_common_vendor_and_usable_models() -> None:
    amd = CpuDef(model="Amd", vendor="AMD")
    assert baseline([amd], CATALOG).model == "Amd"
    limited = Catalog(**{**CATALOG.__dict__, "usable": frozenset({"Old"})})
    assert baseline([CpuDef(model="New")], limited).model == "Old"
    with pytest.raises(UnsupportedError, match="no CPU model in common"):
        baseline([CpuDef(policies={"avx": "require"})], CATALOG)


@pytest.mark.parametrize(
    ("xml", "result", "missing"),
    [
        ("<cpu><model>Mid</model></cpu>", "superset", ()),
        ("<cpu><model>New</model></cpu>", "identical", ()),
        ("<cpu><model>Mid</model><feature policy='require' name='la57'/></cpu>",
         "incompatible", ("la57",)),
        ("<cpu mode='host-passthrough'/>", "identical", ()),
        ("<cpu><model>Amd</model><vendor>AMD</vendor></cpu>", "incompatible", ()),
    ],
)  # fmt: skip
def test_compare_like_virsh(xml: str, result: str, missing: tuple[str, ...]) -> None:
    verdict = compare(cpus(xml)[0], NEW, CATALOG, "GenuineIntel")
    assert (verdict.result, verdict.missing) == (result, missing)


def test_compare_refuses_a_forbidden_feature_the_host_has() -> None:
    (cpu,) = cpus("<cpu><model>Old</model><feature policy='forbid' name='avx'/></cpu>")
    verdict = compare(cpu, NEW, CATALOG, "GenuineIntel")
    assert verdict.result == "incompatible" and verdict.forbidden == ("avx",)
    assert "forbidden avx" in verdict.reason


def test_a_complete_host_list_is_not_added_to_its_guessed_model() -> None:
    # pyvirt's capabilities name a coarse model and list every cpuinfo flag: the flags are the
    # whole truth, so the model's avx2 (which the list lacks) is not claimed
    (host,) = cpus(
        "<cpu><model>New</model><vendor>Intel</vendor><feature name='fpu'/>"
        "<feature name='sse2'/><feature name='pni'/><feature name='sse4_1'/>"
        "<feature name='constant_tsc'/></cpu>"
    )
    assert host.complete
    assert cpu_features(host, CATALOG) == {"fpu", "sse2", "pni", "sse4.1"}
    # a libvirt-style host CPU lists extras over its model only
    (extras,) = cpus("<cpu><model>Mid</model><feature name='avx'/></cpu>")
    assert not extras.complete and cpu_features(extras, CATALOG) == MID | {"avx"}


def test_a_complete_host_list_may_name_a_model_qemu_predates() -> None:
    # pyvirt's capabilities name the host's model from pyvirt's own table: on a Sapphire
    # Rapids host with QEMU 7.2 that is a model QEMU does not define; the list still counts
    xml = (
        "<cpu><model>Newer</model><vendor>Intel</vendor><feature name='fpu'/>"
        "<feature name='sse2'/><feature name='pni'/><feature name='sse4_1'/>"
        "<feature name='sse4_2'/><feature name='popcnt'/></cpu>"
    )
    (host,) = cpus(xml)
    assert cpu_features(host, CATALOG) == MID
    assert baseline(cpus(xml), CATALOG).model == "Mid"
    # a model named for its features is still checked
    (named,) = cpus("<cpu><model>Newer</model><feature policy='require' name='avx'/></cpu>")
    with pytest.raises(InvalidConfigError, match="CPU model 'Newer' is not known to QEMU"):
        cpu_features(named, CATALOG)


def test_catalog_spells_features_as_qemu_knows_them() -> None:
    cat = Catalog(features={}, known=frozenset({"avx512vnni", "cr8legacy", "lahf-lm"}))
    assert [cat.canonical(n) for n in ("avx512_vnni", "cr8_legacy", "lahf_lm", "nopl")] == [
        "avx512vnni", "cr8legacy", "lahf-lm", "nopl",
    ]  # fmt: skip
