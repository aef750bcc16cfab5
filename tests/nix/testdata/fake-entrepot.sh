#!/usr/bin/env bash
# A stand-in for the entrepot admin CLI, for testing the ensure script.
# Its JSON mirrors daemon/admin's KeyList and BucketList.
# State lives in $FAKE_STATE: buckets, keys (one per line), calls (log).
set -eu
st=${FAKE_STATE:?}
touch "$st/buckets" "$st/keys"
if [ "${1:-}" = --admin-socket ]; then shift 2; fi
echo "$*" >>"$st/calls"
json_list() { # wrapper field file
  first=1
  printf '{"%s":[' "$1"
  shift
  while IFS= read -r x; do
    [ -n "$x" ] || continue
    [ $first = 1 ] || printf ','
    first=0
    printf '{"%s":"%s"}' "$1" "$x"
  done <"$2"
  printf ']}\n'
}
has() { grep -qxF -- "$2" "$st/$1"; }
del() { grep -vxF -- "$2" "$st/$1" >"$st/$1.new" || true; mv "$st/$1.new" "$st/$1"; }
case "$1 ${2:-}" in
  "status "*) ;;
  "bucket list") json_list buckets name "$st/buckets" ;;
  "key list") json_list keys access_key_id "$st/keys" ;;
  "bucket create")
    # FAKE_RACE: another node creates it first; FAKE_BROKEN: creation fails.
    if [ -n "${FAKE_BROKEN:-}" ]; then echo "quorum not reached" >&2; exit 1; fi
    if [ -n "${FAKE_RACE:-}" ]; then echo "$3" >>"$st/buckets"; fi
    if has buckets "$3"; then echo "bucket $3 already exists" >&2; exit 1; fi
    echo "$3" >>"$st/buckets" ;;
  "bucket delete")
    has buckets "$3" || { echo "no bucket $3" >&2; exit 1; }
    del buckets "$3" ;;
  "key import")
    # key import --name N --secret-file F ID
    [ "$3" = --name ] && [ "$5" = --secret-file ] || { echo "bad import args: $*" >&2; exit 2; }
    [ -r "$6" ] || { echo "cannot read secret $6" >&2; exit 1; }
    if [ -n "${FAKE_RACE:-}" ]; then echo "$7" >>"$st/keys"; fi
    if has keys "$7"; then echo "key $7 already exists" >&2; exit 1; fi
    echo "$7" >>"$st/keys" ;;
  "key delete")
    has keys "$3" || { echo "no key $3" >&2; exit 1; }
    del keys "$3" ;;
  "key set" | "bucket allow" | "bucket deny") ;;
  *) echo "fake entrepot: unknown command: $*" >&2; exit 2 ;;
esac
