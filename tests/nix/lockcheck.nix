# Builtins-only check of flake.lock: structure, agreement with flake.nix's
# nixpkgs input URL (so Nix never needs to re-lock), and the expected pin.
# Returns the list of problems (empty = fine).
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./tests/nix/lockcheck.nix { lockFile = ./flake.lock; flakeFile = ./flake.nix; pinFile = ./tests/nix/testdata/nixpkgs-pin.json; }'
{
  lockFile,
  flakeFile,
  pinFile,
}:
let
  inherit (builtins)
    attrNames
    elemAt
    fromJSON
    isInt
    match
    readFile
    toJSON
    ;
  lock = fromJSON (readFile lockFile);
  flake = import flakeFile;
  pin = fromJSON (readFile pinFile);

  check = cond: msg: if cond then [ ] else [ msg ];

  inputNames = attrNames (flake.inputs or { });
  url = flake.inputs.nixpkgs.url or "";
  m = match "github:([^/]+)/([^/?]+)(/([^?]+))?" url;
  ref = if m == null then null else elemAt m 3;
  expectedOriginal =
    if m == null then
      null
    else
      {
        type = "github";
        owner = elemAt m 0;
        repo = elemAt m 1;
      }
      // (
        if ref == null then
          { }
        else if match "[0-9a-f]{40}" ref != null then
          { rev = ref; }
        else
          { inherit ref; }
      );

  nodes = lock.nodes or { };
  node = nodes.nixpkgs or { };
  locked = node.locked or { };
  original = node.original or null;
  str = v: if v == null then "null" else toJSON v;
in
check ((lock.version or null) == 7) "flake.lock: version is ${str (lock.version or null)}, expected 7"
++ check ((lock.root or null) == "root") "flake.lock: root is ${str (lock.root or null)}, expected \"root\""
++ check (attrNames nodes == [ "nixpkgs" "root" ]) "flake.lock: nodes are ${str (attrNames nodes)}, expected [\"nixpkgs\",\"root\"]"
++ check (inputNames == [ "nixpkgs" ]) "flake.nix: inputs are ${str inputNames}, this check knows only nixpkgs"
++ check ((nodes.root.inputs or null) == { nixpkgs = "nixpkgs"; }) "flake.lock: nodes.root.inputs is ${str (nodes.root.inputs or null)}, expected {\"nixpkgs\":\"nixpkgs\"}"
++ check (m != null) "flake.nix: inputs.nixpkgs.url = ${str url} is not a github: URL"
++ check (original == expectedOriginal) "flake.lock: nodes.nixpkgs.original is ${str original} but flake.nix's url ${str url} means ${str expectedOriginal}; Nix would re-lock (needs network)"
++ check (attrNames locked == [ "lastModified" "narHash" "owner" "repo" "rev" "type" ]) "flake.lock: nodes.nixpkgs.locked has keys ${str (attrNames locked)}, expected lastModified, narHash, owner, repo, rev, type"
++ check ((locked.type or null) == "github") "flake.lock: locked.type is ${str (locked.type or null)}, expected \"github\""
++ check (expectedOriginal == null || ((locked.owner or null) == expectedOriginal.owner && (locked.repo or null) == expectedOriginal.repo)) "flake.lock: locked owner/repo ${str (locked.owner or null)}/${str (locked.repo or null)} differ from flake.nix's url ${str url}"
++ check (match "[0-9a-f]{40}" (locked.rev or "") != null) "flake.lock: locked.rev ${str (locked.rev or null)} is not 40 hex digits"
++ check (match "sha256-[A-Za-z0-9+/]{43}=" (locked.narHash or "") != null) "flake.lock: locked.narHash ${str (locked.narHash or null)} is not an SRI sha256 hash"
++ check (isInt (locked.lastModified or null)) "flake.lock: locked.lastModified ${str (locked.lastModified or null)} is not an integer"
++ check ((locked.rev or null) == pin.rev) "flake.lock: locked.rev ${str (locked.rev or null)} differs from the pin ${pin.rev}"
++ check ((locked.narHash or null) == pin.narHash) "flake.lock: locked.narHash ${str (locked.narHash or null)} differs from the pin ${pin.narHash}"
++ check ((locked.lastModified or null) == pin.lastModified) "flake.lock: locked.lastModified ${str (locked.lastModified or null)} differs from the pin ${toString pin.lastModified}"
++ check (ref == pin.branch) "flake.nix: nixpkgs ref ${str ref} differs from the pinned branch ${pin.branch}"
