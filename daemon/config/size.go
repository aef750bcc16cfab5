package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// ErrInvalidSize is returned (wrapped) by ParseSize for malformed or out-of-range sizes.
var ErrInvalidSize = errors.New("invalid size")

// Size is a byte count that reads and writes human-friendly strings such as
// "1M" (1 MiB), "500G" or "2T". A bare integer is a number of bytes.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"PIB", 1 << 50}, {"EIB", 1 << 60},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15}, {"EB", 1e18},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"P", 1 << 50}, {"E", 1 << 60},
	{"B", 1},
}

// ParseSize parses a size: a non-negative decimal number (fractions allowed
// with a unit, e.g. "1.5G") followed by an optional unit. Units are case
// insensitive; K, M, G, T, P, E and KiB … EiB are powers of 1024, KB … EB are
// powers of 1000, B is bytes. The result is rounded down to whole bytes.
func ParseSize(s string) (Size, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("%w %q: empty", ErrInvalidSize, s)
	}
	upper := strings.ToUpper(in)
	mult := int64(1)
	num := upper
	for _, u := range sizeUnits {
		if strings.HasSuffix(upper, u.suffix) {
			mult = u.mult
			num = strings.TrimSpace(upper[:len(upper)-len(u.suffix)])
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("%w %q: missing number", ErrInvalidSize, s)
	}
	for _, c := range num {
		if (c < '0' || c > '9') && c != '.' {
			return 0, fmt.Errorf("%w %q: unexpected character %q", ErrInvalidSize, s, c)
		}
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %q: out of range", ErrInvalidSize, s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%w %q: out of range", ErrInvalidSize, s)
		}
		return Size(n * mult), nil
	}
	// Fractional: exact rational arithmetic, then floor.
	if strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("%w %q: malformed number", ErrInvalidSize, s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%w %q: malformed number", ErrInvalidSize, s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() {
		return 0, fmt.Errorf("%w %q: out of range", ErrInvalidSize, s)
	}
	return Size(q.Int64()), nil
}

// String renders the size with the largest binary unit that divides it exactly.
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"E", 1 << 60}, {"P", 1 << 50}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if s > 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalText implements encoding.TextUnmarshaler (TOML strings and integers).
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
