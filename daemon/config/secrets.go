package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrInsecureSecret is returned (wrapped) when a secret file is readable by group or others.
var ErrInsecureSecret = errors.New("secret file is readable by group or others")

// ReadSecrets reads admin.token_file, admin.metrics_token_file and
// rpc.secret_file into the Config. Each file must be a regular file that is
// not readable by group or others (chmod 0600 or 0400), and not empty.
func (c *Config) ReadSecrets() error {
	var err error
	if c.Admin.Token, err = readSecret("admin.token_file", c.Admin.TokenFile); err != nil {
		return err
	}
	if c.Admin.MetricsToken, err = readSecret("admin.metrics_token_file", c.Admin.MetricsTokenFile); err != nil {
		return err
	}
	s, err := readSecret("rpc.secret_file", c.RPC.SecretFile)
	if err != nil {
		return err
	}
	c.RPC.Secret = nil
	if s != "" {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("config: rpc.secret_file: %s: must contain 64 hex characters (32 bytes; `openssl rand -hex 32`): %w", c.RPC.SecretFile, ErrInvalid)
		}
		c.RPC.Secret = b
	}
	return nil
}

// readSecret returns the trimmed content of path ("" when path is "").
func readSecret(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("config: %s: open %s: %w", key, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("config: %s: stat %s: %w", key, path, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("config: %s: %s is not a regular file: %w", key, path, ErrInvalid)
	}
	if st.Mode().Perm()&0o044 != 0 {
		return "", fmt.Errorf("config: %s: %s has mode %04o: %w (chmod 600 %s)", key, path, st.Mode().Perm(), ErrInsecureSecret, path)
	}
	if st.Size() > 64<<10 {
		return "", fmt.Errorf("config: %s: %s is larger than 64 KiB: %w", key, path, ErrInvalid)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("config: %s: read %s: %w", key, path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("config: %s: %s is empty: %w", key, path, ErrInvalid)
	}
	return s, nil
}
