package cluster

import (
	"os"
	"testing"

	"github.com/entrepot/entrepot/tests/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.DefaultBuilder.Cleanup()
	os.Exit(code)
}
