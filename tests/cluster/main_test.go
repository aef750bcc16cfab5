package cluster

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/entrepot/entrepot/tests/harness"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("tests/cluster: skipped in -short mode (multi-process clusters take about a minute)")
		os.Exit(0)
	}
	code := m.Run()
	harness.DefaultBuilder.Cleanup()
	os.Exit(code)
}
