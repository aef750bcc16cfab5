# Stand-ins for the parts of nixpkgs and NixOS that the entrepot module,
# flake and VM tests touch, for evaluation with nixpkgs lib only (no
# packages, no NixOS). Used by evalmodules.nix and flakecheck.nix.
{ lib }:
let
  inherit (lib) mkOption types;

  fakeDrv = name: text: {
    type = "derivation";
    inherit name;
    outPath = builtins.toFile name text;
    meta.mainProgram = name;
  };

  anyOption = mkOption {
    type = types.anything;
    default = null;
  };
in
rec {
  inherit fakeDrv;

  # Writers record their text in the store so tests can read it back.
  pkgs = {
    inherit lib;
    stdenv.hostPlatform.system = "x86_64-linux";
    formats.toml =
      { }:
      {
        type =
          let
            valueType =
              types.nullOr (
                types.oneOf [
                  types.bool
                  types.int
                  types.float
                  types.str
                  types.path
                  (types.attrsOf valueType)
                  (types.listOf valueType)
                ]
              )
              // {
                description = "TOML value";
              };
          in
          types.attrsOf valueType;
        # Stand-in: JSON instead of TOML (the TOML text is checked by the golden test).
        generate = name: value: builtins.toFile name (builtins.toJSON value);
      };
    writeShellScriptBin = name: text: fakeDrv name text // { binText = text; };
    writeShellScript = name: text: builtins.toFile name text;
    writeText = name: text: builtins.toFile name text;
  }
  // lib.genAttrs [
    "jq"
    "diffutils"
    "curl"
    "awscli2"
    "go_1_26"
    "gopls"
    "gotools"
    "miniupnpd"
    "miniupnpc"
    "rclone"
    "s3cmd"
    "restic"
    "nftables"
    "iproute2"
  ] (n: fakeDrv n "");

  # The NixOS options the module sets, and (as `anything`) the ones the VM
  # test nodes set.
  nixosStubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      meta = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      networking.hostName = mkOption {
        type = types.str;
        default = "testhost";
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      networking.firewall.allowedUDPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      networking.firewall.trustedInterfaces = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      networking.firewall.extraInputRules = mkOption {
        type = types.lines;
        default = "";
      };
      networking.firewall.extraCommands = mkOption {
        type = types.lines;
        default = "";
      };
      networking.useDHCP = mkOption { type = types.bool; default = true; };
      networking.nftables.enable = mkOption { type = types.bool; default = false; };
      networking.defaultGateway = mkOption { type = types.nullOr types.str; default = null; };
      networking.interfaces = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      networking.nat = anyOption;
      services.miniupnpd = anyOption;
      virtualisation.vlans = mkOption {
        type = types.listOf types.ints.positive;
        default = [ 1 ];
      };
      virtualisation.diskSize = mkOption { type = types.ints.positive; default = 1024; };
      virtualisation.memorySize = mkOption { type = types.ints.positive; default = 1024; };
      specialisation = mkOption {
        type = types.attrsOf (
          types.submodule {
            options.configuration = mkOption {
              type = types.deferredModule;
              default = { };
            };
          }
        );
        default = { };
      };
      systemd.services = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            freeformType = types.attrsOf types.anything;
            options.serviceConfig = mkOption {
              type = types.attrsOf types.anything;
              default = { };
            };
            options.script = mkOption {
              type = types.lines;
              default = "";
            };
          }
        );
      };
    };
  };

  # Evaluates NixOS-style modules against the stubs.
  evalNixos =
    modules:
    lib.evalModules {
      modules = [ nixosStubs ] ++ modules;
      specialArgs = { inherit pkgs; };
    };

  # Messages of the failed assertions of an evaluation.
  failedAssertions = eval: map (a: a.message) (lib.filter (a: !a.assertion) eval.config.assertions);
}
