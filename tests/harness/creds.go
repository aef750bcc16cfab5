package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// CredentialsFile is the name of the file `entrepot server --dev` writes in
// its data directory on first start.
const CredentialsFile = "dev-credentials.json"

// ErrBadCredentials reports a credentials file that is missing a field.
var ErrBadCredentials = errors.New("bad dev credentials")

// Credentials are the contents of dev-credentials.json.
type Credentials struct {
	Endpoint        string `json:"endpoint"`
	Region          string `json:"region"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// ParseCredentials decodes and checks a dev-credentials.json body. A missing
// region defaults to us-east-1; a missing key id or secret is an error.
func ParseCredentials(b []byte) (Credentials, error) {
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return Credentials{}, fmt.Errorf("%w: decode json: %v", ErrBadCredentials, err)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("%w: access_key_id or secret_access_key empty", ErrBadCredentials)
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	return c, nil
}

// ReadCredentials reads path and returns the credentials and the file mode
// (so a test can assert 0600).
func ReadCredentials(path string) (Credentials, fs.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Credentials{}, 0, fmt.Errorf("stat credentials: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, 0, fmt.Errorf("read credentials: %w", err)
	}
	c, err := ParseCredentials(b)
	if err != nil {
		return Credentials{}, 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, st.Mode().Perm(), nil
}
