package labe2e

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleP2PNode {
		os.Exit(p2pNodeMain())
	}
	os.Exit(m.Run())
}
