package natpunchtest

import (
	"testing"
	"time"
)

func TestClockFiresOnlyWhenDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	a := c.After(10 * time.Second)
	b := c.After(time.Minute)
	if c.Waiters() != 2 {
		t.Fatalf("waiters %d", c.Waiters())
	}
	c.Advance(9 * time.Second)
	select {
	case <-a:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Second)
	if got := <-a; !got.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("fired at %v", got)
	}
	select {
	case <-b:
		t.Fatal("second timer fired early")
	default:
	}
	if c.Waiters() != 1 {
		t.Fatalf("waiters %d", c.Waiters())
	}
	if now := <-c.After(0); !now.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("After(0) = %v", now)
	}
}
