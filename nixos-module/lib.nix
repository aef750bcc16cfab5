# Pure logic of services.entrepot, written with builtins only (no nixpkgs lib),
# so that tests/nix can evaluate it offline with `nix-instantiate --eval`.
#
# Every function takes `cfg`, a plain attribute set shaped like
# config.services.entrepot (see ./default.nix); extra attributes are ignored.
let
  inherit (builtins)
    attrNames
    concatLists
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    genList
    hasAttr
    head
    isAttrs
    isList
    isString
    length
    listToAttrs
    map
    match
    replaceStrings
    stringLength
    substring
    toString
    ;

  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  hasSuffix =
    x: s:
    let
      lx = stringLength x;
      ls = stringLength s;
    in
    ls >= lx && substring (ls - lx) lx s == x;
  optional = c: x: if c then [ x ] else [ ];
  optionalAttrs = c: a: if c then a else { };
  filterNulls = a: listToAttrs (filter (kv: kv.value != null) (map (n: { name = n; value = a.${n}; }) (attrNames a)));
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];

  # Attribute paths of an attrset's leaves (lists and scalars are leaves).
  leafPaths =
    prefix: v:
    if isAttrs v then concatMap (n: leafPaths (prefix ++ [ n ]) v.${n}) (attrNames v) else [ prefix ];

  # The value at an attribute path (which must exist).
  getPath = path: v: foldl' (a: n: a.${n}) v path;

  hasPath =
    path: v:
    if path == [ ] then
      true
    else
      isAttrs v && hasAttr (head path) v && hasPath (builtins.tail path) v.${head path};

  # Deep merge: b wins on leaves; nested attrsets are merged.
  deepMerge =
    a: b:
    a
    // listToAttrs (
      map (n: {
        name = n;
        value = if isAttrs (a.${n} or null) && isAttrs b.${n} then deepMerge a.${n} b.${n} else b.${n};
      }) (attrNames b)
    );
in
rec {
  inherit hasPrefix hasSuffix deepMerge leafPaths getPath;

  # Defaults of the typed options (./default.nix uses these, tests merge
  # sample configurations over them). `zone` has no default.
  defaults = {
    capacity = null;
    gateway = false;
    tags = [ ];
    hostname = null;
    decommission = false;
    replaces = null;
    bootstrapPeers = [ ];
    replicationFactor = 3;
    dataDir = "/var/lib/entrepot/data";
    metadataDir = "/var/lib/entrepot/meta";
    s3 = {
      listen = "[::]:3900";
      region = "us-east-1";
      rootDomain = null;
    };
    web = {
      enable = true;
      listen = "[::]:3902";
      rootDomain = null;
    };
    admin = {
      socket = "/run/entrepot/admin.sock";
      listen = "127.0.0.1:3903";
    };
    rpc = {
      listen = "/ip4/0.0.0.0/tcp/3901";
      publicAddrs = [ ];
      mdns = true;
      gossipInterval = "10s";
      pingInterval = "15s";
    };
    clusterSecretFile = null;
    adminTokenFile = null;
    metricsTokenFile = null;
    nodeKeyFile = null;
    upnp = {
      enable = false;
      expose = [ "rpc" ];
    };
    logLevel = "info";
    logFormat = "text";
    settings = { };
    cluster.zones = [ ];
    ensureBuckets = [ ];
    ensureKeys = { };
    pruneUndeclared = false;
    openFirewall = false;
  };

  # Defaults of one ensureKeys entry (accessKeyId and secretKeyFile have none).
  keyDefaults = {
    allowCreateBucket = false;
    permissions = { };
  };

  # Defaults of one ensureKeys.<name>.permissions.<bucket> entry.
  permissionDefaults = {
    read = false;
    write = false;
    owner = false;
  };

  # A configuration as the module system would produce it: defaults filled in.
  withDefaults =
    cfg:
    let
      c = deepMerge defaults cfg;
    in
    c
    // {
      ensureKeys = builtins.mapAttrs (
        _: k:
        let
          k' = deepMerge keyDefaults k;
        in
        k' // { permissions = builtins.mapAttrs (_: deepMerge permissionDefaults) k'.permissions; }
      ) c.ensureKeys;
    };

  # ---------------------------------------------------------------- secrets
  # The daemon unit loads secret files with systemd LoadCredential; the
  # rendered config points at the per-unit credentials directory.
  unitName = "entrepot";
  ensureUnitName = "entrepot-ensure";
  credentialDir = unit: "/run/credentials/${unit}.service";
  credentialPath = name: "${credentialDir unitName}/${name}";

  # [ { name; file; } ] for the daemon unit's LoadCredential=.
  credentials =
    cfg:
    optional (cfg.clusterSecretFile != null) {
      name = "cluster-secret";
      file = toString cfg.clusterSecretFile;
    }
    ++ optional (cfg.adminTokenFile != null) {
      name = "admin-token";
      file = toString cfg.adminTokenFile;
    }
    ++ optional (cfg.metricsTokenFile != null) {
      name = "metrics-token";
      file = toString cfg.metricsTokenFile;
    }
    ++ optional (cfg.nodeKeyFile != null) {
      name = "node-key";
      file = toString cfg.nodeKeyFile;
    };

  # Name of the node identity file in metadata_dir (daemon.NodeKeyFile).
  nodeKeyFileName = "node_key";

  # ExecStartPre script that installs services.entrepot.nodeKeyFile as the
  # node identity before the first start, and refuses to start if the node
  # already has a different identity.
  nodeKeyScript = cfg: ''
    set -eu
    key="''${CREDENTIALS_DIRECTORY:?}/node-key"
    dst=${shellArg "${cfg.metadataDir}/${nodeKeyFileName}"}
    if [ -e "$dst" ]; then
      if ! cmp -s "$key" "$dst"; then
        echo "entrepot: $dst differs from services.entrepot.nodeKeyFile; a node's identity is never replaced silently (move $dst away to adopt the new key)" >&2
        exit 1
      fi
    else
      mkdir -p ${shellArg cfg.metadataDir}
      chmod 0700 ${shellArg cfg.metadataDir}
      cp "$key" "$dst.tmp"
      chmod 0600 "$dst.tmp"
      mv "$dst.tmp" "$dst"
    fi
  '';

  # Credential name of a declared key's secret in the ensure unit.
  keyCredentialName = keyName: "key-${keyName}";

  # [ { name; file; } ] for the ensure unit's LoadCredential=.
  ensureCredentials =
    cfg:
    map (n: {
      name = keyCredentialName n;
      file = toString cfg.ensureKeys.${n}.secretKeyFile;
    }) (attrNames cfg.ensureKeys);

  loadCredentialLines = creds: map (c: "${c.name}:${c.file}") creds;

  # ---------------------------------------------------------------- rendering
  # Settings keys owned by typed options: [ { path; option; fallback?; } ].
  #
  # Without `fallback` the option always owns the key: setting it in
  # `settings` is an error.
  #
  # With `fallback = true` (options added after the key was reachable only
  # through `settings`), the option's default is the daemon's default
  # (tests/nix checks they agree) and the key is rendered only when the
  # option differs from it. While the option is at its default,
  # `settings.<key>` still sets the key, so configurations written before
  # the option existed keep working; setting both is an error.
  managedKeys = [
    { path = [ "metadata_dir" ]; option = "metadataDir"; }
    { path = [ "data_dir" ]; option = "dataDir"; }
    { path = [ "replication_factor" ]; option = "replicationFactor"; }
    { path = [ "zone" ]; option = "zone"; }
    { path = [ "capacity" ]; option = "capacity"; }
    { path = [ "gateway" ]; option = "gateway"; }
    { path = [ "tags" ]; option = "tags"; }
    { path = [ "hostname" ]; option = "hostname"; }
    { path = [ "decommission" ]; option = "decommission"; fallback = true; }
    { path = [ "replaces" ]; option = "replaces"; fallback = true; }
    { path = [ "s3" "listen" ]; option = "s3.listen"; }
    { path = [ "s3" "root_domain" ]; option = "s3.rootDomain"; }
    { path = [ "s3" "region" ]; option = "s3.region"; fallback = true; }
    { path = [ "web" "enabled" ]; option = "web.enable"; }
    { path = [ "web" "listen" ]; option = "web.listen"; }
    { path = [ "web" "root_domain" ]; option = "web.rootDomain"; }
    { path = [ "admin" "socket" ]; option = "admin.socket"; }
    { path = [ "admin" "listen" ]; option = "admin.listen"; }
    { path = [ "admin" "token_file" ]; option = "adminTokenFile"; }
    { path = [ "admin" "metrics_token_file" ]; option = "metricsTokenFile"; }
    { path = [ "rpc" "listen" ]; option = "rpc.listen"; }
    { path = [ "rpc" "secret_file" ]; option = "clusterSecretFile"; }
    { path = [ "rpc" "bootstrap" ]; option = "bootstrapPeers"; }
    { path = [ "rpc" "public_addrs" ]; option = "rpc.publicAddrs"; }
    { path = [ "rpc" "mdns" ]; option = "rpc.mdns"; fallback = true; }
    { path = [ "rpc" "gossip_interval" ]; option = "rpc.gossipInterval"; fallback = true; }
    { path = [ "rpc" "ping_interval" ]; option = "rpc.pingInterval"; fallback = true; }
    { path = [ "nat" "upnp" ]; option = "upnp.enable"; }
    { path = [ "nat" "expose" ]; option = "upnp.expose"; }
    { path = [ "log" "level" ]; option = "logLevel"; }
    { path = [ "log" "format" ]; option = "logFormat"; fallback = true; }
  ];

  # Daemon keys with no typed option: expert tuning, reached through
  # `settings` only (nixos-module/README.md lists them with their meaning).
  # Together with managedKeys this is every key daemon/config accepts;
  # tests/nix fails when the daemon gains a key missing from both lists.
  settingsOnlyKeys = [
    [ "block_size" ]
    [ "compression_level" ]
    [ "inline_threshold" ]
    [ "gc_delay" ]
    [ "fsync" ]
  ];

  # Every key the daemon accepts, as attribute paths.
  knownKeys = map (k: k.path) managedKeys ++ settingsOnlyKeys;

  # The attribute path of a typed option ("rpc.mdns" -> [ "rpc" "mdns" ]).
  optionPath = option: filter isString (builtins.split "\\." option);

  # Whether a fallback option is left at its default (see managedKeys).
  atDefault = cfg: k: getPath (optionPath k.option) cfg == getPath (optionPath k.option) defaults;

  # Settings keys that are neither typed nor listed in settingsOnlyKeys
  # (typos, or keys of a newer daemon): the daemon refuses unknown keys.
  unknownSettingsPaths = settings: filter (p: !(elem p knownKeys)) (leafPaths [ ] settings);

  # The part of the TOML document derived from typed options.
  derivedSettings =
    cfg:
    let
      # A fallback option's value, or null (not rendered) at its default.
      changed = option: if atDefault cfg { inherit option; } then null else getPath (optionPath option) cfg;
    in
    filterNulls {
      metadata_dir = cfg.metadataDir;
      data_dir = cfg.dataDir;
      replication_factor = cfg.replicationFactor;
      zone = cfg.zone;
      capacity = if cfg.gateway then null else cfg.capacity;
      gateway = cfg.gateway;
      tags = cfg.tags;
      hostname = if cfg.hostname == "" then null else cfg.hostname;
      decommission = changed "decommission";
      replaces = changed "replaces";
    }
    // {
      s3 = filterNulls {
        listen = cfg.s3.listen;
        region = changed "s3.region";
        root_domain = cfg.s3.rootDomain;
      };
      web = filterNulls {
        enabled = cfg.web.enable;
        listen = cfg.web.listen;
        root_domain = cfg.web.rootDomain;
      };
      admin = filterNulls {
        socket = cfg.admin.socket;
        listen = cfg.admin.listen;
        token_file = if cfg.adminTokenFile != null then credentialPath "admin-token" else null;
        metrics_token_file = if cfg.metricsTokenFile != null then credentialPath "metrics-token" else null;
      };
      rpc =
        filterNulls {
          listen = cfg.rpc.listen;
          secret_file = if cfg.clusterSecretFile != null then credentialPath "cluster-secret" else null;
          mdns = changed "rpc.mdns";
          gossip_interval = changed "rpc.gossipInterval";
          ping_interval = changed "rpc.pingInterval";
        }
        // {
          bootstrap = cfg.bootstrapPeers;
        }
        // optionalAttrs (cfg.rpc.publicAddrs != [ ]) { public_addrs = cfg.rpc.publicAddrs; };
    }
    # [nat] is rendered only when UPnP is on, so a config without it stays
    # valid for daemons that predate natpunch.
    // optionalAttrs cfg.upnp.enable {
      nat = {
        upnp = true;
        expose = cfg.upnp.expose;
      };
    }
    // {
      log = filterNulls {
        level = cfg.logLevel;
        format = changed "logFormat";
      };
    };

  # The whole TOML document: typed options plus the freeform `settings`.
  # Conflicts between the two are reported by `assertions`, not resolved here
  # (the typed option wins).
  render = cfg: deepMerge cfg.settings (derivedSettings cfg);

  # ---------------------------------------------------------------- addresses
  # Parses "host:port", "[v6]:port", ":port" or a multiaddr
  # ("/ip4/0.0.0.0/tcp/3901"). Returns { host; port; proto; }, or null for a
  # unix socket path, an empty (disabled) listener, port 0 (random) or
  # anything unparsable. tests/nix fuzzes it against a Go reference.
  parseListen =
    s:
    let
      bracket = match "\\[([^][]*)]:0*([0-9]{1,5})" s;
      plain = match "([^]:/[]*):0*([0-9]{1,5})" s;
      maddr = match "/(ip4|ip6|dns|dns4|dns6)/([^/]+)/(tcp|udp)/0*([0-9]{1,5})(/.*)?" s;
      mk =
        host: port: proto:
        let
          p = builtins.fromJSON port;
        in
        if p < 1 || p > 65535 then null else { inherit host proto; port = p; };
    in
    if !isString s then
      null
    else if bracket != null then
      mk (builtins.elemAt bracket 0) (builtins.elemAt bracket 1) "tcp"
    else if plain != null then
      mk (builtins.elemAt plain 0) (builtins.elemAt plain 1) "tcp"
    else if maddr != null then
      mk (builtins.elemAt maddr 1) (builtins.elemAt maddr 3) (builtins.elemAt maddr 2)
    else
      null;

  isLoopback =
    host:
    host == "localhost" || host == "::1" || match "127\\.[0-9]+\\.[0-9]+\\.[0-9]+" host != null;

  # Listeners reachable from other hosts, by service name.
  publicListeners =
    cfg:
    let
      all = {
        rpc = parseListen cfg.rpc.listen;
        s3 = parseListen cfg.s3.listen;
        web = if cfg.web.enable then parseListen cfg.web.listen else null;
        admin = parseListen cfg.admin.listen;
      };
    in
    filterNulls (
      builtins.mapAttrs (_: l: if l == null || isLoopback l.host then null else l) all
    );

  # Ports for networking.firewall when openFirewall is set:
  # { allowedTCPPorts; allowedUDPPorts; } — exactly the public listeners,
  # plus UDP 5353 when mDNS discovery is on and the rpc listener is public
  # (other members' mDNS answers arrive on that port).
  firewallPorts =
    cfg:
    let
      pub = publicListeners cfg;
      ls = builtins.attrValues pub;
      mdns = if cfg.rpc.mdns && pub ? rpc then [ 5353 ] else [ ];
      ports = proto: extra: builtins.sort builtins.lessThan (unique (map (l: l.port) (filter (l: l.proto == proto) ls) ++ extra));
    in
    {
      allowedTCPPorts = ports "tcp" [ ];
      allowedUDPPorts = ports "udp" mdns;
    };

  # ---------------------------------------------------------------- validation
  secretNameRe = "(.*_)?(secret|secrets|token|password|passwd|private_key|secret_key)";

  # Settings leaves that look like secrets given inline.
  inlineSecretPaths =
    settings:
    filter (
      p:
      let
        last = builtins.elemAt p (length p - 1);
      in
      match secretNameRe last != null
    ) (leafPaths [ ] settings);

  inStore = p: p != null && hasPrefix (builtins.storeDir + "/") (toString p);

  showPath = p: concatStringsSep "." p;

  capacityRe = "[0-9]+(\\.[0-9]+)?([KkMmGgTtPpEe]([Ii]?[Bb])?)?";
  zoneRe = "[A-Za-z0-9._-]{1,64}";
  nameRe = "[A-Za-z0-9][A-Za-z0-9._-]*";
  bucketRe = "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]";
  # A libp2p peer id as `entrepot node id` prints it (base58btc: 12D3KooW…,
  # Qm…), or as a CIDv1 in base32 (b…). The daemon decodes it exactly.
  peerIdRe = "[1-9A-HJ-NP-Za-km-z]{40,60}|b[a-z2-7]{50,80}";
  # A Go duration without sign ("10s", "1m30s", "1.5h", "250ms").
  durationRe = "0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+";

  # [ { assertion; message; } ] in the NixOS `assertions` shape.
  assertions =
    cfg:
    let
      opt = "services.entrepot";
      zones = cfg.cluster.zones;
      secretFiles =
        map (c: { option = "${opt}.${c.option}"; file = c.file; }) (
          optional (cfg.clusterSecretFile != null) { option = "clusterSecretFile"; file = cfg.clusterSecretFile; }
          ++ optional (cfg.adminTokenFile != null) { option = "adminTokenFile"; file = cfg.adminTokenFile; }
          ++ optional (cfg.metricsTokenFile != null) { option = "metricsTokenFile"; file = cfg.metricsTokenFile; }
          ++ optional (cfg.nodeKeyFile != null) { option = "nodeKeyFile"; file = cfg.nodeKeyFile; }
        )
        ++ map (n: {
          option = "${opt}.ensureKeys.${n}.secretKeyFile";
          file = cfg.ensureKeys.${n}.secretKeyFile;
        }) (attrNames cfg.ensureKeys);
      declaredBuckets = cfg.ensureBuckets;
    in
    [
      {
        assertion = match zoneRe cfg.zone != null;
        message = "${opt}.zone = \"${cfg.zone}\" is not a valid zone name (1 to 64 letters, digits, '.', '_', '-').";
      }
      {
        assertion = builtins.all (t: match zoneRe t != null) cfg.tags;
        message = "${opt}.tags: every tag must be 1 to 64 letters, digits, '.', '_' or '-' (got ${builtins.toJSON cfg.tags}).";
      }
      {
        assertion = length (unique cfg.tags) == length cfg.tags;
        message = "${opt}.tags contains a duplicate tag (${builtins.toJSON cfg.tags}).";
      }
      {
        assertion = cfg.gateway || cfg.capacity != null;
        message = "${opt}.capacity must be set (e.g. \"2T\") on a storage node, or set ${opt}.gateway = true for a node that stores no data.";
      }
      {
        assertion = !(cfg.gateway && cfg.capacity != null);
        message = "${opt}.gateway = true stores no data: remove ${opt}.capacity (\"${toString cfg.capacity}\") or set gateway = false.";
      }
      {
        assertion = cfg.capacity == null || match capacityRe cfg.capacity != null;
        message = "${opt}.capacity = \"${toString cfg.capacity}\" is not a size such as \"500G\", \"2T\" or \"1.5TiB\".";
      }
      {
        assertion = length (unique cfg.upnp.expose) == length cfg.upnp.expose;
        message = "${opt}.upnp.expose lists a service twice (${builtins.toJSON cfg.upnp.expose}).";
      }
      {
        assertion = cfg.replicationFactor >= 1 && cfg.replicationFactor <= 7;
        message = "${opt}.replicationFactor must be between 1 and 7 (got ${toString cfg.replicationFactor}).";
      }
      {
        assertion = zones == [ ] || cfg.replicationFactor <= length zones;
        message = "${opt}.replicationFactor = ${toString cfg.replicationFactor} but only ${toString (length zones)} zone(s) are declared in ${opt}.cluster.zones (${concatStringsSep ", " zones}): each replica of a partition must sit in a distinct zone. Lower replicationFactor or declare more zones.";
      }
      {
        assertion = zones == [ ] || elem cfg.zone zones;
        message = "${opt}.zone = \"${cfg.zone}\" is not one of ${opt}.cluster.zones (${concatStringsSep ", " zones}).";
      }
      {
        assertion = cfg.replaces == null || match peerIdRe cfg.replaces != null;
        message = "${opt}.replaces = \"${toString cfg.replaces}\" is not a node ID: give the old node's ID as `entrepot node id` or `entrepot status` prints it (12D3KooW…), not a host name or a multiaddr.";
      }
    ]
    ++ map (o: {
      assertion = match durationRe (getPath (optionPath o) cfg) != null;
      message = "${opt}.${o} = \"${getPath (optionPath o) cfg}\" is not a duration such as \"10s\", \"500ms\" or \"1m30s\" (the daemon accepts 100ms to 1h).";
    }) [ "rpc.gossipInterval" "rpc.pingInterval" ]
    ++ map (p: {
      assertion = false;
      message = "${opt}.settings.${showPath p} looks like a secret given inline: everything in settings is copied to the world-readable Nix store. Put the secret in a file outside the store and use ${opt}.clusterSecretFile, adminTokenFile, metricsTokenFile or ensureKeys.<name>.secretKeyFile.";
    }) (inlineSecretPaths cfg.settings)
    ++ map (k: {
      assertion = false;
      message =
        if k.fallback or false then
          "${opt}.settings.${showPath k.path} and ${opt}.${k.option} are both set; keep only ${opt}.${k.option}."
        else
          "${opt}.settings.${showPath k.path} is managed by ${opt}.${k.option}; set that option instead.";
    }) (filter (k: hasPath k.path cfg.settings && !(k.fallback or false && atDefault cfg k)) managedKeys)
    ++ map (s: {
      assertion = false;
      message = "${s.option} = ${toString s.file} is in the Nix store, which is world-readable; keep secrets in a file outside the store (e.g. /run/keys/… or managed by sops-nix/agenix).";
    }) (filter (s: inStore s.file) secretFiles)
    ++ map (b: {
      assertion = match bucketRe b != null;
      message = "${opt}.ensureBuckets: \"${b}\" is not a valid bucket name (3-63 of a-z, 0-9, '.', '-').";
    }) declaredBuckets
    ++ concatMap (
      n:
      let
        k = cfg.ensureKeys.${n};
      in
      [
        {
          assertion = match nameRe n != null;
          message = "${opt}.ensureKeys.\"${n}\": key names may use letters, digits, '.', '_' and '-' only.";
        }
        {
          assertion = match "[A-Za-z0-9._-]{3,128}" k.accessKeyId != null;
          message = "${opt}.ensureKeys.${n}.accessKeyId = \"${k.accessKeyId}\" must be 3 to 128 letters, digits, '.', '_' or '-'.";
        }
      ]
    ) (attrNames cfg.ensureKeys)
    ++ (
      let
        ids = map (n: cfg.ensureKeys.${n}.accessKeyId) (attrNames cfg.ensureKeys);
      in
      [
        {
          assertion = length (unique ids) == length ids;
          message = "${opt}.ensureKeys: two keys declare the same accessKeyId.";
        }
      ]
    );

  # Messages of the failed assertions.
  failedAssertions = cfg: map (a: a.message) (filter (a: !a.assertion) (assertions cfg));

  # Non-fatal remarks, in the NixOS `warnings` shape (list of strings).
  warnings =
    cfg:
    let
      opt = "services.entrepot";
    in
    concatMap (
      n:
      map (b: "${opt}.ensureKeys.${n}.permissions.${b}: bucket \"${b}\" is not in ${opt}.ensureBuckets; the permission is applied only if the bucket exists.") (
        filter (b: !(elem b cfg.ensureBuckets)) (attrNames cfg.ensureKeys.${n}.permissions)
      )
    ) (attrNames cfg.ensureKeys)
    ++ optional (cfg.clusterSecretFile == null && cfg.bootstrapPeers != [ ]) "${opt}.bootstrapPeers is set but clusterSecretFile is not: every node of a cluster needs the same cluster secret."
    ++ optional (cfg.upnp.enable && cfg.upnp.expose == [ ]) "${opt}.upnp.enable = true with an empty upnp.expose list maps no port."
    ++ map (p: "${opt}.settings.${showPath p} is not a configuration key this module knows for entrepot; the daemon refuses unknown keys at start (check the spelling, or `entrepot server --check-config`).") (
      unknownSettingsPaths cfg.settings
    );

  # ---------------------------------------------------------------- ensure
  shellArg = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";

  # jq filters that turn `bucket list --json` ({"buckets":[{"name":…}]}) and
  # `key list --json` ({"keys":[{"access_key_id":…}]}) into one name (access
  # key id) per line. They also accept a bare array, of objects or strings.
  bucketsJq = ''(if type == "array" then . else (.buckets // .items // []) end)[] | if type == "string" then . else (.name // .bucket // empty) end'';
  keysJq = ''(if type == "array" then . else (.keys // .items // []) end)[] | if type == "string" then . else (.access_key_id // .accessKeyId // .id // empty) end'';

  # The idempotent shell script run by entrepot-ensure.service.
  #   tools = { cli; jq; credentialsDir; readyTimeout; }
  # `cli` is the command prefix that reaches the local daemon's admin API.
  ensureScript =
    tools: cfg:
    let
      keyNames = attrNames cfg.ensureKeys;
      declaredIds = map (n: cfg.ensureKeys.${n}.accessKeyId) keyNames;
      # Another node of the cluster may create the same bucket or import the
      # same key at the same moment: a failed create is fine if the item
      # exists afterwards.
      bucketLines = map (b: ''
        if has "$buckets" ${shellArg b}; then
          echo "bucket ${b}: present"
        else
          echo "bucket ${b}: creating"
          cli bucket create ${shellArg b} || has "$(list_buckets)" ${shellArg b}
        fi
      '') cfg.ensureBuckets;
      keyLines = concatMap (
        n:
        let
          k = cfg.ensureKeys.${n};
          id = shellArg k.accessKeyId;
          perms = attrNames k.permissions;
          flags = p: v: concatStringsSep " " (concatMap (f: optional (p.${f} == v) "--${f}") [ "read" "write" "owner" ]);
        in
        [
          ''
            if has "$keys" ${id}; then
              echo "key ${n}: present"
            else
              echo "key ${n}: importing"
              cli key import --name ${shellArg n} --secret-file "$CREDENTIALS_DIRECTORY/${keyCredentialName n}" ${id} || has "$(list_keys)" ${id}
            fi
          ''
          "cli key set --can-create-bucket=${if k.allowCreateBucket then "true" else "false"} ${id}\n"
        ]
        ++ concatMap (
          b:
          let
            p = k.permissions.${b};
            allow = flags p true;
            deny = flags p false;
          in
          [
            ''
              if has "$buckets_now" ${shellArg b}; then
            ''
          ]
          ++ optional (allow != "") "  cli bucket allow ${allow} --key ${id} ${shellArg b}\n"
          ++ optional (deny != "") "  cli bucket deny ${deny} --key ${id} ${shellArg b}\n"
          ++ [
            ''
              else
                echo "key ${n}: bucket ${b} does not exist, permission not applied" >&2
              fi
            ''
          ]
        ) perms
      ) keyNames;
      pruneLines = optional cfg.pruneUndeclared ''
        for id in $keys; do
          if ! has ${shellArg (concatStringsSep "\n" declaredIds)} "$id"; then
            echo "key $id: not declared, deleting (pruneUndeclared)"
            cli key delete "$id" || { echo "key $id: delete failed" >&2; status=1; }
          fi
        done
        for b in $buckets_now; do
          if ! has ${shellArg (concatStringsSep "\n" cfg.ensureBuckets)} "$b"; then
            echo "bucket $b: not declared, deleting (pruneUndeclared; refused by the daemon if not empty)"
            cli bucket delete "$b" || { echo "bucket $b: delete failed (not empty?)" >&2; status=1; }
          fi
        done
      '';
    in
    concatStringsSep "" (
      [
        ''
          set -eu
          cli() { ${tools.cli} "$@"; }
          has() { printf '%s\n' "$1" | grep -qxF -- "$2"; }
          status=0
          CREDENTIALS_DIRECTORY="''${CREDENTIALS_DIRECTORY:-${tools.credentialsDir}}"
          i=0
          until cli status >/dev/null 2>&1; do
            i=$((i + 1))
            if [ "$i" -ge ${toString tools.readyTimeout} ]; then
              echo "entrepot-ensure: the daemon did not answer 'entrepot status' within ${toString tools.readyTimeout}s" >&2
              exit 1
            fi
            sleep 1
          done
          list_buckets() { cli bucket list --json | ${tools.jq} -r ${shellArg bucketsJq}; }
          list_keys() { cli key list --json | ${tools.jq} -r ${shellArg keysJq}; }
          buckets=$(list_buckets)
          keys=$(list_keys)
        ''
      ]
      ++ bucketLines
      ++ [
        ''
          buckets_now=$(list_buckets)
        ''
      ]
      ++ keyLines
      ++ pruneLines
      ++ [ "exit $status\n" ]
    );
}
