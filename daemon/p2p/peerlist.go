package p2p

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// peerListVersion is the format version of the persisted peer list.
const peerListVersion = 1

type peerListFile struct {
	Version int             `json:"version"`
	Peers   []peerListEntry `json:"peers"`
}

type peerListEntry struct {
	ID       string    `json:"id"`
	Addrs    []string  `json:"addrs"`
	LastSeen time.Time `json:"last_seen"`
}

func (p *Host) loadPeerList() error {
	b, err := os.ReadFile(p.cfg.PeerListFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read peer list: %w", err)
	}
	var f peerListFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("parse peer list: %w", err)
	}
	if f.Version != peerListVersion {
		return fmt.Errorf("peer list version %d not supported", f.Version)
	}
	for _, e := range f.Peers {
		id, err := peer.Decode(e.ID)
		if err != nil || id == p.h.ID() {
			continue
		}
		for _, s := range e.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				p.h.Peerstore().AddAddr(id, a, 24*time.Hour)
			}
		}
		p.mu.Lock()
		p.peers[id] = &peerState{lastSeen: e.LastSeen}
		p.mu.Unlock()
	}
	return nil
}

func (p *Host) savePeerList() error {
	if p.cfg.PeerListFile == "" {
		return nil
	}
	f := peerListFile{Version: peerListVersion}
	for _, st := range p.Peers() {
		f.Peers = append(f.Peers, peerListEntry{ID: st.ID, Addrs: st.Addrs, LastSeen: st.LastSeen})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p.cfg.PeerListFile, b)
}

func (p *Host) savePeerListLogged() {
	if err := p.savePeerList(); err != nil {
		p.log.Warn("peer list not saved", "err", err)
	}
}
