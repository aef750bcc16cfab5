//go:build !netlab

package p2p

import "log/slog"

// LabBuild is true only in a binary built with the netlab tag.
const LabBuild = false

// applyLabPrefix does nothing in a release build: private addresses stay
// private whatever the environment says.
func applyLabPrefix(*slog.Logger) error { return nil }
