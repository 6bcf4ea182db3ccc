"""The user-data schema: ``edgeplane:`` (the agent), ``install:`` and ``stages:``.

Key names follow the reference system's ``stylus:`` section (camelCase, same nesting) so that a
technician who knows one knows the other; only vendor names changed (``paletteEndpoint`` is
``consoleEndpoint``, ``edgeHostToken`` is ``registrationToken``). Unknown keys inside
``edgeplane:`` are errors (a typo must not silently fall back to a default); other top-level
Kairos keys are accepted and kept.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# Characters the reference system removes from device IDs; also refused in an explicit prefix.
PREFIX_RE = re.compile(r"^[A-Za-z0-9-]+$")
STAGE_NAMES = frozenset(
    base + suffix
    for base in (
        "rootfs", "initramfs", "boot", "fs", "network", "reconcile",
        "after-install", "after-install-chroot", "after-upgrade", "after-upgrade-chroot",
        "after-reset", "after-reset-chroot", "before-install", "before-upgrade", "before-reset",
    )
    for suffix in ("", ".before", ".after")
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _check_proxy_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// URL, e.g. http://proxy.example.com:3128")
    return value


def _ip_text(value: str) -> str:
    ipaddress.ip_address(value)  # its ValueError names the bad address
    return value


def _interface_text(value: str) -> str:
    ipaddress.ip_interface(value)
    return value


ProxyUrl = Annotated[str, AfterValidator(_check_proxy_url)]
IpText = Annotated[str, AfterValidator(_ip_text)]


def _check_pem(value: str) -> str:
    text = value.strip()
    if "-----BEGIN CERTIFICATE-----" not in text:
        try:  # the reference docs allow base64-encoded PEM too
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (ValueError, UnicodeDecodeError):
            raise ValueError("is neither a PEM certificate nor base64 of one") from None
    if "-----BEGIN CERTIFICATE-----" not in text or "-----END CERTIFICATE-----" not in text:
        raise ValueError("is not a complete PEM certificate (BEGIN/END CERTIFICATE lines)")
    return text + "\n"


Pem = Annotated[str, AfterValidator(_check_pem)]


class DeviceUIDPath(Strict):
    name: str = Field(description="file whose content identifies the device")
    regex: str | None = None

    @field_validator("name")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") and value != "$random":
            raise ValueError("must be an absolute file path (e.g. /sys/class/dmi/id/board_serial) or $random")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
        return value


class TagsFromFile(Strict):
    fileName: str
    delimiter: str = "\n"
    separator: str = ":"


class TagsFromScript(Strict):
    scriptName: str
    timeout: int = Field(60, ge=1, le=3600)


class Interface(Strict):
    type: Literal["dhcp", "static"] = "dhcp"
    ipAddress: Annotated[str, AfterValidator(_interface_text)] | None = None
    mask: IpText | None = None
    gateway: IpText | None = None
    nameserver: IpText | None = None

    @model_validator(mode="after")
    def _static_needs_address(self) -> Interface:
        if self.type == "static" and self.ipAddress is None:
            raise ValueError("type static needs ipAddress (CIDR form, e.g. 10.0.10.25/24)")
        if self.type == "dhcp" and (self.ipAddress or self.gateway):
            raise ValueError("type dhcp takes no ipAddress or gateway (set type: static)")
        return self

    def prefix_length(self) -> int:
        """Prefix length from ``ipAddress`` in CIDR form, else from ``mask``."""
        assert self.ipAddress is not None
        if "/" in self.ipAddress:
            return ipaddress.ip_interface(self.ipAddress).network.prefixlen
        mask = self.mask or "255.255.255.255"
        return ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen


class Network(Strict):
    httpProxy: ProxyUrl | None = None
    httpsProxy: ProxyUrl | None = None
    noProxy: str | None = None
    nameserver: IpText | None = None
    interfaces: dict[str, Interface] = Field(default_factory=dict)

    @field_validator("noProxy")
    @classmethod
    def _no_proxy(cls, value: str | None) -> str | None:
        for item in filter(None, (part.strip() for part in (value or "").split(","))):
            if not re.match(r"^[A-Za-z0-9.*:/_-]+$", item):
                raise ValueError(f"entry {item!r} is not an IP, CIDR or domain")
        return value


class User(Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    groups: list[str] = Field(default_factory=list)
    passwd: str | None = None
    passwordExpiry: date | None = None
    lock_passwd: bool = False
    ssh_authorized_keys: list[str] = Field(default_factory=list)

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not re.match(r"^(ssh-|ecdsa-|sk-)\S+ \S+", key.strip()):
                raise ValueError(f"{key[:20]!r}... is not an OpenSSH public key line")
        return keys


class RemoteShell(Strict):
    disable: bool = False


class Site(Strict):
    name: str | None = None
    prefix: str = "edge"
    deviceUIDPaths: list[DeviceUIDPath] = Field(
        default_factory=lambda: [DeviceUIDPath(name="/sys/class/dmi/id/product_uuid")]
    )
    consoleEndpoint: str | None = None
    registrationToken: str | None = None
    disableAutoRegister: bool = False
    registrationURL: str | None = None
    projectName: str | None = None
    projectUid: str | None = None
    hostName: str | None = None
    clusterId: str | None = None
    clusterName: str | None = None
    insecureSkipVerify: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    tagsFromFile: TagsFromFile | None = None
    tagsFromScript: TagsFromScript | None = None
    network: Network = Field(default_factory=Network)
    caCerts: list[Pem] = Field(default_factory=list)
    ntpServers: list[str] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    remoteShell: RemoteShell = Field(default_factory=RemoteShell)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not PREFIX_RE.match(value):
            raise ValueError("may hold only letters, digits and '-'")
        return value

    @field_validator("consoleEndpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(https?://)?[A-Za-z0-9.\[\]:-]+(/.*)?$", value):
            raise ValueError("must be a host name, host:port or URL, e.g. console.example.com")
        return value

    @field_validator("registrationURL")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_values(cls, value: Any) -> Any:
        if isinstance(value, dict):  # YAML turns `floor: 2` into an int; a tag is text
            return {k: str(v) if isinstance(v, (int, float, bool)) else v for k, v in value.items()}
        return value

    def console_url(self) -> str | None:
        """``consoleEndpoint`` as a base URL (https:// unless a scheme is given)."""
        if not self.consoleEndpoint:
            return None
        url = self.consoleEndpoint
        return (url if "://" in url else f"https://{url}").rstrip("/")


class RegistryCredentials(Strict):
    domain: str
    username: str | None = None
    password: str | None = None
    encodedPassword: bool = False
    insecure: bool = False

    @model_validator(mode="after")
    def _decodable(self) -> RegistryCredentials:
        if self.encodedPassword and self.password is not None:
            try:
                base64.b64decode(self.password, validate=True)
            except ValueError:
                raise ValueError("encodedPassword is true but password is not base64") from None
        return self

    def plain_password(self) -> str | None:
        if self.password is None or not self.encodedPassword:
            return self.password
        return base64.b64decode(self.password).decode()


class ExternalRegistry(RegistryCredentials):
    repositoryName: str | None = None
    certificates: list[Pem] = Field(default_factory=list)


class ExternalRegistries(Strict):
    registries: list[ExternalRegistry] = Field(default_factory=list)
    registryMappingRules: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _targets_known(self) -> ExternalRegistries:
        domains = {r.domain.split("/")[0] for r in self.registries}
        for source, target in self.registryMappingRules.items():
            if not source or not target:
                raise ValueError("registryMappingRules: source and target prefixes must not be empty")
            if domains and target.split("/")[0] not in domains:
                raise ValueError(
                    f"registryMappingRules: target {target!r} is not on any registry in registries[].domain"
                )
        return self


class LocalUILogin(Strict):
    disableRateLimiting: bool = False
    attemptsBeforeExponentialDelayStarts: int = Field(3, ge=0)
    maxFailedAttemptsBeforeLockout: int = Field(5, ge=1)
    lockoutDurationInMinutes: int = Field(15, ge=1)


class LocalUI(Strict):
    port: int = Field(5080, ge=1, le=65535)
    login: LocalUILogin = Field(default_factory=LocalUILogin)


class ImageRedirectWebhook(Strict):
    enable: bool = True
    port: int = Field(0, ge=0, le=65535)


class Vip(Strict):
    skip: bool = False


class Agent(Strict):
    """The ``edgeplane:`` section (the reference system's ``stylus:``).

    Every documented key is accepted; the ones only other parts act on (Local UI, TUI, webhook,
    remote shell) are validated here and carried for them.
    """

    debug: bool = False
    trace: bool = False
    managementMode: Literal["central", "local"] = "central"
    installationMode: Literal["connected", "airgap"] | None = None  # the deprecated name of managementMode
    enableMultiNode: bool = False
    disableTui: bool = False
    featureGate: str = ""
    disablePasswordUpdate: bool = False
    includeTui: bool = False  # deprecated in the reference system (the TUI is always on); accepted
    path: str = "/"
    imageRedirectWebhook: ImageRedirectWebhook = Field(default_factory=ImageRedirectWebhook)
    site: Site = Field(default_factory=Site)
    registryCredentials: RegistryCredentials | None = None
    externalRegistries: ExternalRegistries | None = None
    localUI: LocalUI = Field(default_factory=LocalUI)
    vip: Vip = Field(default_factory=Vip)


    @model_validator(mode="after")
    def _deprecated_mode(self) -> Agent:
        if self.installationMode is not None and "managementMode" not in self.model_fields_set:
            mode = "central" if self.installationMode == "connected" else "local"
            object.__setattr__(self, "managementMode", mode)
        return self


class Partition(Strict):
    size: int = Field(0, ge=0, description="MiB; 0 takes the rest of the disk")
    fs: str


class ExtraPartition(Partition):
    name: str
    label: str | None = None


class Install(Strict):
    bind_mounts: list[str] = Field(default_factory=list)
    extra_dirs_rootfs: list[str] = Field(default_factory=list, alias="extra-dirs-rootfs")
    grub_options: dict[str, str] = Field(default_factory=dict)
    partitions: dict[Literal["persistent", "oem", "state", "recovery"], Partition] = Field(default_factory=dict)
    extra_partitions: list[ExtraPartition] = Field(default_factory=list, alias="extra-partitions")
    poweroff: bool = False
    reboot: bool = False

    @model_validator(mode="after")
    def _one_end(self) -> Install:
        if self.poweroff and self.reboot:
            raise ValueError("poweroff and reboot cannot both be true")
        return self


class StageFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    permissions: int | None = None
    owner: int | None = None
    group: int | None = None
    content: str = ""
    encoding: Literal["", "b64", "base64", "gz", "gzip", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64"] = ""


class StageStep(BaseModel):
    """One stage item; Kairos supports many more keys than we run, so unknown ones are kept."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    name: str | None = None
    if_: str | None = Field(None, alias="if")
    commands: list[str] = Field(default_factory=list)
    files: list[StageFile] = Field(default_factory=list)
    users: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sysctl: dict[str, str | int] = Field(default_factory=dict)


def _known_stage(name: str) -> str:
    if name not in STAGE_NAMES:
        raise ValueError("unknown stage; known stages: rootfs, initramfs, boot, fs, network, reconcile, "
                         "after-/before- install|upgrade|reset (each also with .before/.after)")
    return name


StageName = Annotated[str, AfterValidator(_known_stage)]


class UserData(BaseModel):
    """A whole user-data document; other top-level Kairos keys are kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    edgeplane: Agent = Field(default_factory=Agent)
    install: Install = Field(default_factory=Install)
    stages: dict[StageName, list[StageStep]] = Field(default_factory=dict)
