# Lib-only evaluation of nixos-module/ with lib.evalModules: the NixOS
# options the module touches are stubbed, and pkgs is a fake whose
# writers record their text in the store (formats.toml writes JSON); see
# stubs.nix.
# Needs only a nixpkgs lib/ tree, no nixpkgs packages:
#
#   nix-instantiate --read-write-mode --eval --strict --json -E 'import ./tests/nix/evalmodules.nix {
#     libPath = /path/to/nixpkgs/lib;
#     userConfig = { services.entrepot = { enable = true; zone = "a"; capacity = "1T"; }; }; }'
{
  libPath,
  userConfig ? { },
}:
let
  lib = import libPath;

  stubs = import ./stubs.nix { inherit lib; };
  inherit (stubs) fakeDrv;

  eval = stubs.evalNixos [
    ../../nixos-module
    { services.entrepot.package = lib.mkDefault (fakeDrv "entrepot" ""); }
    userConfig
  ];
  cfg = eval.config;
  svc = cfg.systemd.services;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);

  # Options under services.entrepot (including ensureKeys.<name>.*) that
  # lack a description or an example.
  entOptions =
    lib.collect lib.isOption eval.options.services.entrepot
    ++ lib.filter (o: !(lib.elem "_module" o.loc)) (
      lib.collect lib.isOption (eval.options.services.entrepot.ensureKeys.type.getSubOptions [ "ensureKeys" "<name>" ])
    );
  undocumented = map (o: lib.showOption o.loc) (
    lib.filter (
      o: !(o ? description) || (!(o ? example) && lib.last o.loc != "enable")
    ) entOptions
  );
in
{
  inherit failed undocumented;
  warnings = cfg.warnings;
  enabled = cfg.services.entrepot.enable;
}
// lib.optionalAttrs (cfg.services.entrepot.enable && failed == [ ]) {
  serviceConfig = svc.entrepot.serviceConfig;
  ensureServiceConfig = svc.entrepot-ensure.serviceConfig or null;
  ensureScript =
    if svc ? entrepot-ensure then builtins.readFile svc.entrepot-ensure.serviceConfig.ExecStart else null;
  wantedBy = svc.entrepot.wantedBy;
  firewall = cfg.networking.firewall;
  rendered = builtins.fromJSON (
    builtins.readFile (lib.last (lib.splitString " " svc.entrepot.serviceConfig.ExecStart))
  );
  systemPackages = map (p: p.binText or p.name) cfg.environment.systemPackages;
  optionCount = builtins.length entOptions;
  options = map (o: lib.showOption o.loc) entOptions;
}
