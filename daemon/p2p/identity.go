package p2p

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/pnet"
)

// identityVersion is the first byte of the key file, before the marshalled key.
const identityVersion = 1

// LoadOrCreateIdentity reads the node's ed25519 key from path, creating it
// (mode 0600, parent 0700) on first start. A key file readable by group or
// others is refused: it is the node's identity in the cluster.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("stat identity %s: %w", path, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("identity %s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
		}
		if len(b) < 2 || b[0] != identityVersion {
			return nil, fmt.Errorf("identity %s: unknown format", path)
		}
		k, err := crypto.UnmarshalPrivateKey(b[1:])
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w", path, err)
		}
		return k, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal identity: %w", err)
	}
	if err := writeFileAtomic(path, append([]byte{identityVersion}, raw...)); err != nil {
		return nil, fmt.Errorf("write identity: %w", err)
	}
	return k, nil
}

// ParseSecret turns the cluster secret (64 hex characters, as stored in the
// secret file) into the private-network key. The key is derived with a domain
// separator so the raw secret never goes on the wire, even hashed, for any other use.
func ParseSecret(s string) (pnet.PSK, error) {
	s = strings.TrimSpace(s)
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 32 {
		return nil, errors.New("cluster secret must be 64 hexadecimal characters (32 bytes); generate one with `openssl rand -hex 32`")
	}
	sum := sha256.Sum256(append([]byte("entrepot/pnet/v1\x00"), raw...))
	return pnet.PSK(sum[:]), nil
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
