-- Console schema, version 1. Portable SQL: {autoid} and {blob} are replaced per dialect.
-- Times are milliseconds since the epoch (BIGINT); JSON documents are TEXT.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE audit_log (
    id {autoid},
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

CREATE TABLE packs (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name, version)
);

CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT REFERENCES projects(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    profile_id TEXT NOT NULL REFERENCES profiles(id),
    settings TEXT NOT NULL,
    datastore TEXT NOT NULL,
    generation INTEGER NOT NULL,
    deleting INTEGER NOT NULL DEFAULT 0,
    ever_running INTEGER NOT NULL DEFAULT 0,
    operation TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- One row per edge host ID. tenant_id is NULL only for a QR request not yet approved.
CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id),
    project_id TEXT REFERENCES projects(id),
    registration TEXT NOT NULL,
    approved INTEGER NOT NULL DEFAULT 0,
    waiting_for TEXT,
    credential_hash TEXT UNIQUE,
    qr_code_hash TEXT,
    qr_secret_hash TEXT,
    qr_expires_at BIGINT,
    tags TEXT NOT NULL,
    inventory TEXT NOT NULL,
    health TEXT,
    health_message TEXT,
    last_heartbeat BIGINT,
    cluster_id TEXT REFERENCES clusters(id),
    pool TEXT,
    profile_id TEXT,
    spec TEXT NOT NULL,
    spec_generation INTEGER NOT NULL,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    phase TEXT,
    phase_message TEXT,
    kubernetes TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX hosts_tenant ON hosts (tenant_id);
CREATE INDEX hosts_cluster ON hosts (cluster_id);

CREATE TABLE events (
    id {autoid},
    tenant_id TEXT,
    cluster_id TEXT,
    host_id TEXT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX events_cluster ON events (cluster_id, id);
CREATE INDEX events_host ON events (host_id, id);

CREATE TABLE artifacts (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    digest TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, digest)
);

-- Artifact bytes in 1 MiB chunks so a download streams without loading the whole file.
CREATE TABLE artifact_chunks (
    digest TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data {blob} NOT NULL,
    PRIMARY KEY (digest, seq)
);
