// Package crash SIGKILLs a real `entrepot server --dev` again and again
// during concurrent uploads and checks after each restart that every
// acknowledged write reads back byte-exact, that a write without an answer
// is either absent or complete, and that an overwrite leaves either the old
// or the new object, never a mix. Run it with `go test ./tests/crash`;
// ENTREPOT_CRASH_KILLS changes the number of kills (default 50).
package crash
