# services.entrepot — one entrepot node, declared from configuration.nix.
#
# Pure logic (rendering, validation, the ensure script) lives in ./lib.nix,
# which uses builtins only and is tested offline by tests/nix.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.services.entrepot;
  elib = import ./lib.nix;
  d = elib.defaults;
  opt = "services.entrepot";

  tomlFormat = pkgs.formats.toml { };
  configFile = tomlFormat.generate "entrepot.toml" (elib.render cfg);

  exe = lib.getExe cfg.package;

  # The admin CLI on PATH, talking to this node's daemon.
  cliWrapper = pkgs.writeShellScriptBin "entrepot" ''
    exec ${exe} --admin-socket ${lib.escapeShellArg cfg.admin.socket} "$@"
  '';

  # Bounded readiness check: the unit is "started" once the admin API answers.
  readyCheck = pkgs.writeShellScript "entrepot-ready" ''
    i=0
    until ${exe} --admin-socket ${lib.escapeShellArg cfg.admin.socket} status >/dev/null 2>&1; do
      i=$((i + 1))
      if [ "$i" -ge ${toString cfg.readyTimeout} ]; then
        echo "entrepot did not answer 'entrepot status' on ${cfg.admin.socket} within ${toString cfg.readyTimeout}s" >&2
        exit 1
      fi
      sleep 1
    done
  '';

  ensureScript = pkgs.writeShellScript "entrepot-ensure" (
    elib.ensureScript {
      cli = "${exe} --admin-socket ${lib.escapeShellArg cfg.admin.socket}";
      jq = lib.getExe pkgs.jq;
      credentialsDir = elib.credentialDir elib.ensureUnitName;
      readyTimeout = cfg.readyTimeout;
    } cfg
  );

  nodeKeyScript = pkgs.writeShellScript "entrepot-node-key" (elib.nodeKeyScript cfg);

  hasEnsure = cfg.ensureBuckets != [ ] || cfg.ensureKeys != { } || cfg.pruneUndeclared;

  stateRoot = "/var/lib/entrepot";
  underState = p: lib.hasPrefix "${stateRoot}/" (toString p) || toString p == stateRoot;
  extraRwPaths = lib.filter (p: !(underState p)) [
    cfg.dataDir
    cfg.metadataDir
  ];

  keyModule = types.submodule {
    options = {
      accessKeyId = mkOption {
        type = types.str;
        description = "Access key id of the key, imported as is so every rebuild (and every node) agrees on it.";
        example = "GK3d5e0f1a2b3c4d5e6f7a8b9c";
      };
      secretKeyFile = mkOption {
        type = types.path;
        description = ''
          File holding the secret access key, outside the Nix store. It is passed to the
          ensure unit with systemd `LoadCredential` and read by `entrepot key import --secret-file`.
        '';
        example = "/run/keys/entrepot-alice.secret";
      };
      allowCreateBucket = mkOption {
        type = types.bool;
        default = elib.keyDefaults.allowCreateBucket;
        description = "Whether the key may create buckets.";
        example = true;
      };
      permissions = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              read = mkOption {
                type = types.bool;
                default = false;
                description = "Read objects of the bucket.";
                example = true;
              };
              write = mkOption {
                type = types.bool;
                default = false;
                description = "Write and delete objects of the bucket.";
                example = true;
              };
              owner = mkOption {
                type = types.bool;
                default = false;
                description = "Change the bucket's settings (website, CORS, lifecycle).";
                example = true;
              };
            };
          }
        );
        default = { };
        description = ''
          Permissions of the key per bucket. For a bucket listed here the flags are exactly
          the declared ones (a flag set to false is revoked); buckets not listed are left alone.
        '';
        example = literalExpression ''
          { photos = { read = true; write = true; }; website = { read = true; }; }
        '';
      };
    };
  };

  listenOption =
    default: what:
    mkOption {
      type = types.str;
      inherit default;
      description = "Listen address of the ${what}.";
      example = default;
    };
in
{
  options.services.entrepot = {
    enable = mkEnableOption "entrepot, a self-hosted S3-compatible object store replicated across homes";

    package = mkOption {
      type = types.package;
      description = "The entrepot package (the flake sets its own build as the default).";
      example = literalExpression "inputs.entrepot.packages.\${pkgs.system}.default";
    };

    settings = mkOption {
      type = tomlFormat.type;
      default = d.settings;
      description = ''
        Free-form entrepot configuration, rendered to TOML and merged with the typed options
        below. It reaches every key of the daemon's configuration; the keys without a typed
        option are `block_size`, `compression_level`, `inline_threshold`, `gc_delay` and `fsync`.
        A key owned by a typed option is an error here (e.g. `settings.zone`), except for the
        keys of `decommission`, `replaces`, `s3.region`, `rpc.mdns`, `rpc.gossipInterval`,
        `rpc.pingInterval` and `logFormat`, which `settings` may still set while that option is
        left at its default. A key the daemon does not know gives an evaluation warning. Put no
        secret here: it ends up in the world-readable Nix store.
      '';
      example = literalExpression ''
        { block_size = "4M"; compression_level = 3; gc_delay = "1h"; fsync = true; }
      '';
    };

    zone = mkOption {
      type = types.str;
      description = "Zone of this node (usually one per home): replicas of a partition are placed in distinct zones.";
      example = "home-paris";
    };

    capacity = mkOption {
      type = types.nullOr types.str;
      default = d.capacity;
      description = "Storage capacity this node offers to the cluster; data is spread in proportion. Null only for a gateway.";
      example = "2T";
    };

    gateway = mkOption {
      type = types.bool;
      default = d.gateway;
      description = "Run as a gateway: serve S3 and web, store no data.";
      example = true;
    };

    tags = mkOption {
      type = types.listOf types.str;
      default = d.tags;
      description = "Free-form tags of this node, shown in the cluster layout.";
      example = [ "nas" "ssd" ];
    };

    hostname = mkOption {
      type = types.nullOr types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "Node name shown in the cluster status.";
      example = "nas-paris";
    };

    decommission = mkOption {
      type = types.bool;
      default = d.decommission;
      description = ''
        Take this node out of the cluster: it leaves the next layout and its partitions move to
        the other nodes (watch `entrepot status`). The node keeps serving until you stop it, so
        switch this on, wait for the data to move, then disable the service. The node declares
        its role from this option at every start: a node retired with `entrepot node retire`
        that restarts with `decommission = false` joins the layout again.
      '';
      example = true;
    };

    replaces = mkOption {
      type = types.nullOr types.str;
      default = d.replaces;
      description = ''
        Node ID of a node this one replaces, for a machine re-installed with a new identity:
        the old ID leaves the layout and this node takes over its share. Null: replaces
        nothing. The ID is what `entrepot node id` printed on the old node (also shown by
        `entrepot status`). To keep the old identity instead, use `nodeKeyFile`.
      '';
      example = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";
    };

    replicationFactor = mkOption {
      type = types.ints.positive;
      default = d.replicationFactor;
      description = "Number of copies of every object; must be the same on every node of the cluster.";
      example = 2;
    };

    cluster.zones = mkOption {
      type = types.listOf types.str;
      default = d.cluster.zones;
      description = ''
        Optional list of every zone of the cluster, used only for checks at evaluation time:
        this node's zone must be one of them and `replicationFactor` may not exceed their number.
      '';
      example = [ "home-paris" "home-lyon" "home-nantes" ];
    };

    bootstrapPeers = mkOption {
      type = types.listOf types.str;
      default = d.bootstrapPeers;
      description = "libp2p multiaddrs (with /p2p/ peer id) of other nodes to join at start.";
      example = [ "/dns4/nas.lyon.example.net/tcp/3901/p2p/12D3KooWExample" ];
    };

    dataDir = mkOption {
      type = types.str;
      default = d.dataDir;
      description = ''
        Directory of object data blocks. Paths outside /var/lib/entrepot are added to
        `ReadWritePaths` and must be writable by the service user.
      '';
      example = "/mnt/disk1/entrepot";
    };

    metadataDir = mkOption {
      type = types.str;
      default = d.metadataDir;
      description = "Directory of the metadata database; put it on an SSD if you can.";
      example = "/var/lib/entrepot/meta";
    };

    s3 = {
      listen = listenOption d.s3.listen "S3 API";
      region = mkOption {
        type = types.str;
        default = d.s3.region;
        description = "Region S3 clients must sign their requests for (1 to 64 of a-z, 0-9, '-', '_').";
        example = "garage";
      };
      rootDomain = mkOption {
        type = types.nullOr types.str;
        default = d.s3.rootDomain;
        description = "Domain suffix for virtual-host style S3 requests (bucket.<rootDomain>).";
        example = ".s3.example.net";
      };
    };

    web = {
      enable = mkOption {
        type = types.bool;
        default = d.web.enable;
        description = "Serve buckets that have a website configuration as static websites on web.listen.";
        example = false;
      };
      listen = listenOption d.web.listen "static website endpoint";
      rootDomain = mkOption {
        type = types.nullOr types.str;
        default = d.web.rootDomain;
        description = "Domain suffix under which buckets are served as websites (bucket.<rootDomain>).";
        example = ".web.example.net";
      };
    };

    admin = {
      socket = mkOption {
        type = types.str;
        default = d.admin.socket;
        description = "Unix socket of the admin API, used by the `entrepot` command on PATH. Must stay under /run/entrepot.";
        example = d.admin.socket;
      };
      listen = listenOption d.admin.listen "admin HTTP API (bearer token from adminTokenFile; /metrics)";
    };

    rpc = {
      listen = mkOption {
        type = types.str;
        default = d.rpc.listen;
        description = "libp2p listen multiaddr for cluster traffic.";
        example = "/ip6/::/tcp/3901";
      };
      publicAddrs = mkOption {
        type = types.listOf types.str;
        default = d.rpc.publicAddrs;
        description = "Multiaddrs other homes can reach this node at, when known in advance (e.g. a port forward).";
        example = [ "/dns4/nas.paris.example.net/tcp/3901" ];
      };
      mdns = mkOption {
        type = types.bool;
        default = d.rpc.mdns;
        description = ''
          Discover other members of the cluster on the local network with mDNS. With the NixOS
          firewall on, other nodes' announcements arrive only if UDP port 5353 is open:
          `openFirewall` opens it when this is on and the rpc listener is not loopback.
        '';
        example = false;
      };
      gossipInterval = mkOption {
        type = types.str;
        default = d.rpc.gossipInterval;
        description = "Period of cluster-state gossip between nodes, as a Go duration (100ms to 1h).";
        example = "30s";
      };
      pingInterval = mkOption {
        type = types.str;
        default = d.rpc.pingInterval;
        description = "Liveness ping period, as a Go duration (100ms to 1h); a peer is reported down after 4 missed pings.";
        example = "5s";
      };
    };

    clusterSecretFile = mkOption {
      type = types.nullOr types.path;
      default = d.clusterSecretFile;
      description = ''
        File with the cluster secret (the libp2p private-network key), identical on every node,
        outside the Nix store. Passed with systemd `LoadCredential`. Generate one with
        `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'`.
      '';
      example = "/run/keys/entrepot-cluster-secret";
    };

    adminTokenFile = mkOption {
      type = types.nullOr types.path;
      default = d.adminTokenFile;
      description = "File with the bearer token of the admin HTTP API, outside the Nix store (LoadCredential).";
      example = "/run/keys/entrepot-admin-token";
    };

    metricsTokenFile = mkOption {
      type = types.nullOr types.path;
      default = d.metricsTokenFile;
      description = "File with the bearer token for /metrics, outside the Nix store (LoadCredential).";
      example = "/run/keys/entrepot-metrics-token";
    };

    nodeKeyFile = mkOption {
      type = types.nullOr types.path;
      default = d.nodeKeyFile;
      description = ''
        Optional file with this node's identity key (the format of `metadata_dir/node_key`: a
        version byte 0x01, then the libp2p-marshalled ed25519 private key), outside the Nix store.
        It pins the node's peer id, so other nodes can list it in `bootstrapPeers` before the node
        first starts. Installed before the first start; if the node already has a different
        identity the unit refuses to start. Null: the daemon creates a key on first start.
      '';
      example = "/run/keys/entrepot-node-key";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = d.openFirewall;
      description = ''
        Open exactly the ports entrepot listens on for other hosts: rpc, s3, web, and the
        admin port only when it is not bound to loopback.
      '';
      example = true;
    };

    upnp = {
      enable = mkOption {
        type = types.bool;
        default = d.upnp.enable;
        description = ''
          Ask the home router (UPnP IGD / NAT-PMP / PCP) to forward the exposed ports to this node.
          Also lets UPnP discovery replies (UDP from source port 1900) through the firewall.
        '';
        example = true;
      };
      expose = mkOption {
        type = types.listOf (types.enum [ "rpc" "s3" "web" ]);
        default = d.upnp.expose;
        description = "Services whose ports are mapped on the router's WAN side when upnp.enable is set.";
        example = [ "rpc" "s3" "web" ];
      };
    };

    logLevel = mkOption {
      type = types.enum [ "error" "warn" "info" "debug" ];
      default = d.logLevel;
      description = "Log level of the daemon.";
      example = "debug";
    };

    logFormat = mkOption {
      type = types.enum [ "text" "json" ];
      default = d.logFormat;
      description = "Format of the daemon's log lines on stderr (the journal).";
      example = "json";
    };

    readyTimeout = mkOption {
      type = types.ints.positive;
      default = 90;
      description = "Seconds the unit waits for the admin API to answer before start-up counts as failed.";
      example = 300;
    };

    ensureBuckets = mkOption {
      type = types.listOf types.str;
      default = d.ensureBuckets;
      description = "Buckets created after start if missing. Undeclared buckets are kept unless pruneUndeclared is set.";
      example = [ "photos" "backups" ];
    };

    ensureKeys = mkOption {
      type = types.attrsOf keyModule;
      default = d.ensureKeys;
      description = ''
        Access keys imported after start if missing, with their per-bucket permissions.
        Applied idempotently by `entrepot-ensure.service` on every switch.
      '';
      example = literalExpression ''
        {
          alice = {
            accessKeyId = "GK3d5e0f1a2b3c4d5e6f7a8b9c";
            secretKeyFile = "/run/keys/entrepot-alice.secret";
            permissions.photos = { read = true; write = true; };
          };
        }
      '';
    };

    pruneUndeclared = mkOption {
      type = types.bool;
      default = d.pruneUndeclared;
      description = ''
        Delete keys and buckets that are not declared in ensureKeys / ensureBuckets
        (non-empty buckets are refused by the daemon). Off by default: nothing undeclared is deleted.
      '';
      example = true;
    };
  };

  config = mkIf cfg.enable {
    assertions =
      elib.assertions cfg
      ++ [
        {
          assertion = lib.hasPrefix "/run/entrepot/" cfg.admin.socket;
          message = "${opt}.admin.socket must be under /run/entrepot/ (the unit's RuntimeDirectory).";
        }
      ];
    warnings = elib.warnings cfg;

    environment.systemPackages = [ cliWrapper ];

    networking.firewall = lib.mkMerge [
      (mkIf cfg.openFirewall (elib.firewallPorts cfg))
      # UPnP discovery: the router answers an SSDP multicast search with
      # unicast from port 1900, which connection tracking does not match.
      (mkIf (cfg.upnp.enable && config.networking.nftables.enable) {
        extraInputRules = ''
          udp sport 1900 accept comment "entrepot: UPnP SSDP replies"
        '';
      })
      (mkIf (cfg.upnp.enable && !config.networking.nftables.enable) {
        extraCommands = ''
          ip46tables -A nixos-fw -p udp --sport 1900 -j nixos-fw-accept
        '';
      })
    ];

    systemd.services.entrepot = {
      description = "entrepot object store";
      documentation = [ "https://github.com/entrepot/entrepot" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      restartTriggers = [ configFile ];
      path = [ pkgs.diffutils ];
      serviceConfig = {
        Type = "exec";
        ExecStart = "${exe} server -c ${configFile}";
        ExecStartPost = "${readyCheck}";
        Restart = "on-failure";
        RestartSec = 5;
        TimeoutStartSec = cfg.readyTimeout + 30;
        LoadCredential = elib.loadCredentialLines (elib.credentials cfg);

        DynamicUser = true;
        # Named, so entrepot-ensure.service shares the same dynamic user
        # (and may use the 0600 admin socket) while both run.
        User = "entrepot";
        Group = "entrepot";
        StateDirectory = "entrepot";
        StateDirectoryMode = "0700";
        RuntimeDirectory = "entrepot";
        RuntimeDirectoryMode = "0750";
        LimitNOFILE = 65536;

        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        SystemCallFilter = [ "@system-service" ];
        SystemCallArchitectures = "native";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        UMask = "0077";
      }
      // lib.optionalAttrs (extraRwPaths != [ ]) { ReadWritePaths = extraRwPaths; }
      // lib.optionalAttrs (cfg.nodeKeyFile != null) { ExecStartPre = "${nodeKeyScript}"; };
    };

    systemd.services.${elib.ensureUnitName} = mkIf hasEnsure {
      description = "entrepot: apply declared buckets, keys and permissions";
      after = [ "entrepot.service" ];
      requires = [ "entrepot.service" ];
      partOf = [ "entrepot.service" ];
      wantedBy = [ "multi-user.target" ];
      # Re-run on every switch that changes the declaration.
      restartTriggers = [ ensureScript ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${ensureScript}";
        # Until the cluster has a quorum, writes fail: try again.
        Restart = "on-failure";
        RestartSec = 15;
        LoadCredential = elib.loadCredentialLines (elib.ensureCredentials cfg);
        # The daemon's dynamic user (shared while entrepot.service runs),
        # the only one allowed on its 0600 admin socket.
        DynamicUser = true;
        User = "entrepot";
        Group = "entrepot";
        ProtectSystem = "strict";
        ReadWritePaths = [ "-/run/entrepot" ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateNetwork = true;
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        RestrictAddressFamilies = [ "AF_UNIX" ];
        SystemCallFilter = [ "@system-service" ];
        UMask = "0077";
      };
    };
  };

  meta.doc = ./README.md;
}
