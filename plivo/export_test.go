package plivo

import "time"

// InstantWaits makes c's limiter and retry waits return at once, advancing
// a fake clock instead, and returns a function listing the waits so far.
// For tests in package plivo_test.
func InstantWaits(c *Client) func() []time.Duration {
	clock := newFakeClock()
	c.now = clock.Now
	c.sleep = clock.Sleep
	return clock.Sleeps
}
