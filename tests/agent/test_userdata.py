"""User-data: schema errors name field, line and reason; site user-data overrides and extends."""

from __future__ import annotations

import base64

import pytest

from edgeplane.agent import UserDataError, load_user_data, validate_user_data

PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
PEM_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----"

FULL = f"""#cloud-config
edgeplane:
  managementMode: central
  site:
    consoleEndpoint: console.example.com
    registrationToken: tok-123
    projectName: edge-sites
    name: edge-store-042
    prefix: store
    deviceUIDPaths:
      - name: /sys/class/dmi/id/board_serial
        regex: "SN-(\\\\w+)"
    tags: {{city: chicago, floor: 2}}
    tagsFromFile: {{fileName: /etc/tags, delimiter: ";", separator: "="}}
    tagsFromScript: {{scriptName: /opt/tags.sh}}
    network:
      httpProxy: http://proxy.example.com:3128
      httpsProxy: http://proxy.example.com:3128
      noProxy: 10.10.128.10,10.0.0.0/8,.svc
      nameserver: 1.1.1.1
      interfaces:
        enp0s3: {{type: static, ipAddress: 10.0.10.25/24, gateway: 10.0.10.1, nameserver: 10.10.128.8}}
        enp0s4: {{type: dhcp}}
    caCerts:
      - |
        {PEM_A.replace(chr(10), chr(10) + '        ')}
    ntpServers: [time.example.com]
    users:
      - name: ops
        groups: [sudo]
        ssh_authorized_keys: ["ssh-ed25519 AAAAC3Nza ops@example"]
  registryCredentials: {{domain: 10.10.254.254:8000/spectro-images, username: u, password: p, insecure: true}}
  externalRegistries:
    registries:
      - domain: registry.example.com
        username: u
        password: {base64.b64encode(b"secret").decode()}
        encodedPassword: true
    registryMappingRules:
      gcr.io/spectro-images-public: registry.example.com/mirror
  localUI: {{port: 5443}}
  vip: {{skip: true}}
install:
  poweroff: true
  bind_mounts: [/var/lib/wpa]
  extra-partitions: [{{name: data, size: 0, fs: ext4}}]
stages:
  initramfs:
    - name: Create user
      users:
        kairos: {{groups: [sudo], passwd: kairos}}
  network.after:
    - name: say hi
      commands: [echo hi]
kairos_option: kept
"""


def test_full_document_is_accepted_with_every_section() -> None:
    ud = validate_user_data(FULL)
    site = ud.edgeplane.site
    assert site.console_url() == "https://console.example.com"
    assert site.tags == {"city": "chicago", "floor": "2"}
    assert site.network.interfaces["enp0s3"].prefix_length() == 24
    assert site.network.interfaces["enp0s4"].type == "dhcp"
    assert site.caCerts[0].startswith("-----BEGIN CERTIFICATE-----")
    assert ud.edgeplane.externalRegistries.registries[0].plain_password() == "secret"
    assert ud.edgeplane.vip.skip and ud.edgeplane.localUI.port == 5443
    assert ud.install.extra_partitions[0].name == "data" and ud.install.poweroff
    assert [s.name for s in ud.stages["network.after"]] == ["say hi"]
    assert ud.model_extra == {"kairos_option": "kept"}


def test_defaults_follow_the_reference_system() -> None:
    ud = validate_user_data("#cloud-config\n")
    assert ud.edgeplane.managementMode == "central"
    assert ud.edgeplane.localUI.port == 5080
    assert ud.edgeplane.site.prefix == "edge"
    assert [p.name for p in ud.edgeplane.site.deviceUIDPaths] == ["/sys/class/dmi/id/product_uuid"]
    assert ud.edgeplane.vip.skip is False


def problems_of(text: str) -> list[str]:
    with pytest.raises(UserDataError) as caught:
        validate_user_data(text)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("body", "expected"), [
    ("edgeplane:\n  site:\n    prefx: edge\n", "user-data:4: edgeplane.site.prefx: unknown field"),
    ("edgeplane:\n  localUI:\n    port: 99999\n", "user-data:4: edgeplane.localUI.port: Input should be less than or equal to 65535"),
    ("edgeplane:\n  managementMode: airgap\n", "user-data:3: edgeplane.managementMode: Input should be 'central' or 'local'"),
    ("edgeplane:\n  site:\n    prefix: 'my_site'\n", "user-data:4: edgeplane.site.prefix: may hold only letters, digits and '-'"),
    ("edgeplane:\n  site:\n    network:\n      interfaces:\n        eth0:\n          type: static\n",
     "user-data:6: edgeplane.site.network.interfaces.eth0: type static needs ipAddress"),
    ("edgeplane:\n  site:\n    network:\n      interfaces:\n        eth0: {type: static, ipAddress: 10.0.0.300/24}\n",
     "user-data:6: edgeplane.site.network.interfaces.eth0.ipAddress:"),
    ("edgeplane:\n  site:\n    network:\n      httpProxy: proxy:3128\n",
     "user-data:5: edgeplane.site.network.httpProxy: must be an http:// or https:// URL"),
    ("edgeplane:\n  site:\n    caCerts: [not-a-cert]\n", "user-data:4: edgeplane.site.caCerts[0]: is neither a PEM certificate"),
    ("edgeplane:\n  site:\n    deviceUIDPaths:\n      - name: /x\n        regex: '(('\n",
     "user-data:6: edgeplane.site.deviceUIDPaths[0].regex: is not a valid regular expression"),
    ("edgeplane:\n  site:\n    users:\n      - name: ops\n        ssh_authorized_keys: [hello]\n",
     "user-data:6: edgeplane.site.users[0].ssh_authorized_keys: 'hello'... is not an OpenSSH public key line"),
    ("edgeplane:\n  externalRegistries:\n    registries: [{domain: a.example}]\n    registryMappingRules: {gcr.io/x: b.example/y}\n",
     "user-data:3: edgeplane.externalRegistries: registryMappingRules: target 'b.example/y' is not on any registry"),
    ("install:\n  poweroff: true\n  reboot: true\n", "user-data:2: install: poweroff and reboot cannot both be true"),
    ("stages:\n  boot: []\n  bogus: []\n", "user-data:4: stages.bogus: unknown stage"),
    ("a: [\n", "user-data:3: (document): not valid YAML"),
    ("- just\n- a list\n", "user-data:1: (document): the document must be a mapping"),
])
def test_errors_name_field_line_and_reason(body: str, expected: str) -> None:
    found = problems_of("#cloud-config\n" + body)
    assert any(p.startswith(expected) for p in found), found


def test_header_is_required() -> None:
    assert problems_of("edgeplane: {}\n") == ["user-data:1: (document): first line must be '#cloud-config', got 'edgeplane: {}'"]


def test_all_problems_are_reported_at_once() -> None:
    found = problems_of("#cloud-config\nedgeplane:\n  debug: maybe\n  localUI: {port: 0}\n")
    assert [p.split(":")[1] for p in found] == ["3", "4"]


BUILTIN = f"""#cloud-config
edgeplane:
  site:
    consoleEndpoint: console.example.com
    registrationToken: factory-token
    tags: {{fleet: retail, region: us}}
    caCerts:
      - |
        {PEM_A.replace(chr(10), chr(10) + '        ')}
    users:
      - {{name: ops, groups: [sudo]}}
      - {{name: audit}}
    ntpServers: [a.example, b.example]
    name: factory-name
stages:
  boot:
    - {{name: one, commands: [echo one]}}
    - {{name: two, commands: [echo two]}}
"""

SITE = f"""#cloud-config
edgeplane:
  site:
    registrationToken: site-token
    tags: {{region: eu, store: "042"}}
    caCerts:
      - |
        {PEM_B.replace(chr(10), chr(10) + '        ')}
    users:
      - {{name: ops, groups: [wheel]}}
      - {{name: tech}}
    ntpServers: [site.example]
    name: null
    network:
      interfaces:
        eth0: {{type: static, ipAddress: 192.168.1.10/24, gateway: 192.168.1.1}}
stages:
  boot:
    - {{name: two, commands: [echo site-two]}}
    - {{name: three, commands: [echo three]}}
"""


def test_site_user_data_overrides_and_extends_the_builtin() -> None:
    ud = load_user_data(BUILTIN, SITE)
    site = ud.edgeplane.site
    assert site.consoleEndpoint == "console.example.com"       # kept from built-in
    assert site.registrationToken == "site-token"              # scalar replaced
    assert site.tags == {"fleet": "retail", "region": "eu", "store": "042"}  # mapping merged
    assert len(site.caCerts) == 2 and "AAAA" in site.caCerts[0] and "BBBB" in site.caCerts[1]  # union
    assert [(u.name, u.groups) for u in site.users] == [("ops", ["wheel"]), ("audit", []), ("tech", [])]
    assert site.ntpServers == ["site.example"]                 # plain list replaced
    assert site.name is None                                   # explicit null removes
    assert site.network.interfaces["eth0"].gateway == "192.168.1.1"
    assert [(s.name, s.commands) for s in ud.stages["boot"]] == [
        ("one", ["echo one"]), ("two", ["echo site-two"]), ("three", ["echo three"])]


def test_merged_errors_point_into_the_site_document() -> None:
    site = "#cloud-config\nedgeplane:\n  site:\n    network:\n      nameserver: 1.1.1\n"
    with pytest.raises(UserDataError) as caught:
        load_user_data(BUILTIN, site)
    assert str(caught.value.problems[0]).startswith("site-user-data:5: edgeplane.site.network.nameserver:")


def test_builtin_errors_are_reported_even_when_site_overrides() -> None:
    bad = BUILTIN.replace("tags:", "tagz:")
    with pytest.raises(UserDataError) as caught:
        load_user_data(bad, SITE)
    assert str(caught.value.problems[0]).startswith("user-data:6: edgeplane.site.tagz: unknown field")


def test_every_documented_key_is_accepted_and_the_old_mode_name_maps() -> None:
    ud = validate_user_data("""#cloud-config
edgeplane:
  installationMode: airgap
  disablePasswordUpdate: true
  includeTui: true
  imageRedirectWebhook: {enable: false, port: 8443}
  localUI: {port: 5080, login: {maxFailedAttemptsBeforeLockout: 3, lockoutDurationInMinutes: 30}}
  site:
    remoteShell: {disable: true}
""")
    assert ud.edgeplane.managementMode == "local"
    assert ud.edgeplane.localUI.login.maxFailedAttemptsBeforeLockout == 3
    assert ud.edgeplane.site.remoteShell.disable and not ud.edgeplane.imageRedirectWebhook.enable
    both = validate_user_data("#cloud-config\nedgeplane:\n  installationMode: airgap\n  managementMode: central\n")
    assert both.edgeplane.managementMode == "central"  # the current name wins
