package model

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// ValidBucketName reports whether name follows the S3 bucket naming rules:
// 3–63 characters of lowercase letters, digits, '-' and '.', starting and
// ending with a letter or digit, no "..", and not shaped like an IPv4 address.
func ValidBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return false
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return false
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return false
	}
	return true
}

func checkBucketName(name string) error {
	if !ValidBucketName(name) {
		return fmt.Errorf("bucket %q: %w", name, ErrInvalidBucketName)
	}
	return nil
}

// checkKey validates an object key: 1..1024 bytes of UTF-8 without NUL.
func checkKey(key string) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("empty object key: %w", ErrInvalidArgument)
	case len(key) > maxKeyLen:
		return fmt.Errorf("object key of %d bytes: %w", len(key), ErrKeyTooLong)
	case !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("object key is not valid UTF-8 or contains NUL: %w", ErrInvalidArgument)
	}
	return nil
}

func checkPartNumber(n int) error {
	if n < 1 || n > maxParts {
		return fmt.Errorf("part number %d not in 1..%d: %w", n, maxParts, ErrInvalidArgument)
	}
	return nil
}
