package model

import "github.com/entrepot/entrepot/daemon/block"

// Blocks is the store's block store, for the daemon to enable block
// replication on it (block.Store.EnableReplication) before serving, and to
// read its Status and run scrubs.
func (s *Store) Blocks() *block.Store { return s.blocks }
