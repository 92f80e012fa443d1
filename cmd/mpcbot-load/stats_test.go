package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 values", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100 values", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the maximum", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 values is the maximum", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %g) = %v, want %v", tt.ds, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeDoesNotReorderItsInput(t *testing.T) {
	ds := []time.Duration{3, 1, 2}
	s := summarize(ds)
	if s.N != 3 || s.P50 != 2 || s.Max != 3 {
		t.Errorf("summary %+v", s)
	}
	if ds[0] != 3 || ds[1] != 1 || ds[2] != 2 {
		t.Errorf("input reordered: %v", ds)
	}
}

func TestSummarizePercentiles(t *testing.T) {
	t.Parallel()
	ds := make([]time.Duration, 200)
	for i := range ds {
		ds[i] = time.Duration(200-i) * time.Millisecond // 200 … 1 ms, unsorted
	}
	want := latencySummary{N: 200, P50: 100 * time.Millisecond, P90: 180 * time.Millisecond, P99: 198 * time.Millisecond, Max: 200 * time.Millisecond}
	if got := summarize(ds); got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
}

// at returns times at the given offsets in milliseconds from a fixed base.
func at(offsets ...int) []time.Time {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]time.Time, len(offsets))
	for i, o := range offsets {
		out[i] = base.Add(time.Duration(o) * time.Millisecond)
	}
	return out
}

// bucket returns the arrival times of a saturated token bucket: burst
// requests at 0, then one every 1/rate seconds, n in all.
func bucket(burst int, rate float64, n int) []time.Time {
	offsets := make([]int, n)
	for i := range offsets {
		if i >= burst {
			offsets[i] = int(math.Round(float64(i-burst+1) * 1000 / rate))
		}
	}
	return at(offsets...)
}

func TestMaxInWindow(t *testing.T) {
	tests := []struct {
		name  string
		times []time.Time
		w     time.Duration
		want  int
	}{
		{"none", nil, time.Second, 0},
		{"one", at(0), time.Second, 1},
		{"the window is closed at both ends", at(0, 1000), time.Second, 2},
		{"just outside", at(0, 1001), time.Second, 1},
		{"busiest window is in the middle", at(0, 2000, 2100, 2200, 2900, 4000), time.Second, 4},
		{"same instant", at(5, 5, 5), time.Millisecond, 3},
		{"saturated bucket, 1 s: burst + rate", bucket(10, 10, 200), time.Second, 20},
		{"saturated bucket, 5 s", bucket(10, 10, 200), 5 * time.Second, 60},
		{"saturated bucket, 10 s", bucket(10, 10, 200), 10 * time.Second, 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maxInWindow(tt.times, tt.w); got != tt.want {
				t.Errorf("maxInWindow(…, %s) = %d, want %d", tt.w, got, tt.want)
			}
		})
	}
}

func TestWindowBound(t *testing.T) {
	tests := []struct {
		burst int
		rate  float64
		w     time.Duration
		want  int
	}{
		{10, 10, time.Second, 20},
		{10, 10, 5 * time.Second, 60},
		{1, 2.5, time.Second, 3},
		{5, 0.3, 10 * time.Second, 8},
		{10, 10, 150 * time.Millisecond, 11},
	}
	for _, tt := range tests {
		if got := windowBound(tt.burst, tt.rate, tt.w); got != tt.want {
			t.Errorf("windowBound(%d, %g, %s) = %d, want %d", tt.burst, tt.rate, tt.w, got, tt.want)
		}
	}
}

func TestSustainedRate(t *testing.T) {
	full := bucket(10, 10, 210) // 200 after the burst, the last at 20 s
	base := full[0]
	sec := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name        string
		times       []time.Time
		from, until time.Time
		want        float64
	}{
		{"steady part of a 10/s bucket", full, sec(2), sec(20), 10},
		{"the burst inflates the estimate", full, sec(0), sec(20), 209.0 / 20},
		{"a slower bucket", bucket(5, 4, 45), sec(2), sec(10), 4},
		{"fewer than two requests", at(0, 5000), sec(1), sec(10), 0},
		{"nothing in range", full, sec(30), sec(40), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sustainedRate(tt.times, tt.from, tt.until)
			if math.Abs(got-tt.want) > 1e-9*math.Max(1, tt.want) {
				t.Errorf("sustainedRate = %.6f, want %.6f", got, tt.want)
			}
		})
	}
}
