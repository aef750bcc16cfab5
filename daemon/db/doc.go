// Package db wraps goleveldb for entrepot's metadata.
//
// keys.go is the single owner of the key space: every prefix byte, every key
// encoding and the schema version live there, so no other package builds raw
// keys by hand. Every stored value starts with a format version byte
// (see WrapValue / UnwrapValue).
//
// Writes made with Durable = true are synced to disk before they return;
// goleveldb merges concurrent synced writes into one journal fsync, so many
// parallel durable writers cost far fewer than one fsync each. A synced write
// also makes every earlier unsynced write durable, because the journal is a
// single append-only file.
package db
