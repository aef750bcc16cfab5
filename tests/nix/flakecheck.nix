# Evaluates flake.nix's outputs with nixpkgs lib only: nixpkgs packages,
# buildGo126Module, mkShell and testers.runNixOSTest are stand-ins
# (stubs.nix), so the flake's wiring, the package arguments, the source
# filter and every VM test node (with the real services.entrepot module,
# and each specialisation) are checked without nixpkgs. Needs
# --read-write-mode (the source filter copies into the store).
{ libPath }:
let
  lib = import libPath;
  stubs = import ./stubs.nix { inherit lib; };
  flake = import ../../flake.nix;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  fakePkgsFor =
    system:
    stubs.pkgs
    // {
      stdenv.hostPlatform.system = system;
      buildGo126Module =
        args:
        stubs.fakeDrv "entrepot" ""
        // {
          inherit (args)
            pname
            version
            vendorHash
            ldflags
            subPackages
            checkPhase
            src
            meta
            ;
          name = "${args.pname}-${args.version}";
          goArgs = args;
        };
      mkShell = args: { shellPackages = map (p: p.name) args.packages; };
      # The test module itself, inspected below.
      testers.runNixOSTest = test: test;
    };

  # nixosSystem stand-in: the stubbed evaluation, with a fake toplevel that
  # forces the assertions (as building the real one would).
  nixosSystem =
    args:
    let
      e = stubs.evalNixos (
        args.modules
        ++ [
          {
            options.boot.isContainer = lib.mkOption { type = lib.types.bool; default = false; };
            options.system.stateVersion = lib.mkOption { type = lib.types.str; };
          }
        ]
      );
      failed = stubs.failedAssertions e;
    in
    {
      config = e.config // {
        system.build.toplevel.drvPath =
          if failed == [ ] then
            builtins.toFile "toplevel-drvpath" (builtins.toJSON e.config.systemd.services.entrepot.serviceConfig)
          else
            throw "module-eval: failed assertions: ${toString failed}";
      };
    };

  nixpkgs = {
    lib = lib // { inherit nixosSystem; };
    legacyPackages = lib.genAttrs systems fakePkgsFor;
  };
  outputs = flake.outputs {
    self = outputs // {
      shortRev = "0123abc";
    };
    inherit nixpkgs;
  };

  evalNode =
    node:
    let
      e = stubs.evalNixos [ node ];
      svc = e.config.systemd.services;
      force =
        ev:
        let
          s = ev.config.systemd.services;
        in
        {
          failed = stubs.failedAssertions ev;
          warnings = ev.config.warnings;
          entrepot = ev.config.services.entrepot.enable or false;
          execStart = s.entrepot.serviceConfig.ExecStart or null;
          ensure = if s ? entrepot-ensure then builtins.readFile s.entrepot-ensure.serviceConfig.ExecStart else null;
          config =
            if s ? entrepot then
              builtins.fromJSON (builtins.readFile (lib.last (lib.splitString " " s.entrepot.serviceConfig.ExecStart)))
            else
              null;
        };
    in
    force e
    // {
      specialisations = lib.mapAttrs (_: sp: force (stubs.evalNixos [
        node
        sp.configuration
      ])) e.config.specialisation;
      secretsScript = svc.entrepot-test-secrets.script or null;
    };

  vmTest =
    t:
    let
      fakeNodes = lib.mapAttrs (n: _: { system.build.toplevel = "/nix/store/00000000000000000000000000000000-toplevel-${n}"; }) t.nodes;
    in
    {
      inherit (t) name;
      nodes = lib.mapAttrs (_: evalNode) t.nodes;
      testScript = if builtins.isFunction t.testScript then t.testScript { nodes = fakeNodes; } else t.testScript;
    };

  perSystem = attr: lib.mapAttrs (_: builtins.attrNames) outputs.${attr};
  pkg = outputs.packages.x86_64-linux.entrepot;
in
{
  outputNames = builtins.attrNames outputs;
  packagesPerSystem = perSystem "packages";
  checksPerSystem = perSystem "checks";
  appsPerSystem = perSystem "apps";
  devShellsPerSystem = perSystem "devShells";
  nixosModules = builtins.attrNames outputs.nixosModules;
  package = {
    inherit (pkg)
      pname
      version
      vendorHash
      ldflags
      subPackages
      checkPhase
      ;
    mainProgram = pkg.meta.mainProgram;
    # lib.fileset needs builtins.readFileType (Nix >= 2.14): null on older Nix.
    srcEntries = if builtins ? readFileType then builtins.attrNames (builtins.readDir pkg.src) else null;
    sameAsDefault = outputs.packages.x86_64-linux.default.name == pkg.name;
  };
  app = outputs.apps.x86_64-linux.default;
  moduleEval = builtins.readFile outputs.checks.x86_64-linux.module-eval;
  devShell = outputs.devShells.x86_64-linux.default.shellPackages;
  vmTests = lib.mapAttrs (_: vmTest) (
    lib.filterAttrs (n: _: lib.hasPrefix "vm-" n) outputs.checks.x86_64-linux
  );
}
