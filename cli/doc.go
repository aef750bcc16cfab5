// Package cli is the `entrepot` command: the server and the admin client.
//
//	entrepot [global flags] server [-c FILE] [--check-config] [--dev] [--data-dir DIR] [--s3-listen ADDR] [--admin-listen ADDR]
//	entrepot [global flags] key    create|import|list|info|delete|set|allow|deny
//	entrepot [global flags] bucket create|delete|list|info|allow|deny
//	entrepot [global flags] status
//	entrepot version
//
// Global flags: -c/--config FILE, --admin-socket PATH ($ENTREPOT_ADMIN_SOCKET),
// --admin-url URL ($ENTREPOT_ADMIN_URL), --admin-token-file FILE (or
// $ENTREPOT_ADMIN_TOKEN), --data-dir DIR (dev directory: socket at
// DIR/admin.sock), --json.
//
// The admin client finds the daemon in this order: --admin-url, then
// --admin-socket, then --data-dir, then the config file given with -c
// (admin.socket, else admin.listen with admin.token_file), then
// ./entrepot-dev/admin.sock if it exists, then the default config file's
// admin.socket, then /run/entrepot/admin.sock.
//
// This is the only package that reads the process environment; everything
// below receives values.
package cli
