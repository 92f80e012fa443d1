package main

import (
	"math"
	"slices"
	"time"
)

// latencySummary is the distribution of a set of latencies.
type latencySummary struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// summarize returns the count, p50, p90, p99 and maximum of ds (zero for
// none).
func summarize(ds []time.Duration) latencySummary {
	if len(ds) == 0 {
		return latencySummary{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return latencySummary{
		N:   len(sorted),
		P50: percentileSorted(sorted, 50),
		P90: percentileSorted(sorted, 90),
		P99: percentileSorted(sorted, 99),
		Max: sorted[len(sorted)-1],
	}
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method: the smallest value with at least p % of the values
// at or below it. It returns 0 for no values.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return percentileSorted(sorted, p)
}

func percentileSorted(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// maxInWindow returns the largest number of times that fall in one closed
// window [t, t+w], over every placement of the window. times must be
// sorted in ascending order. A token bucket with burst b and rate r lets at
// most b + r·w requests through in any such window.
func maxInWindow(times []time.Time, w time.Duration) int {
	best := 0
	end := 0
	for start := range times {
		if end < start {
			end = start
		}
		for end < len(times) && !times[end].After(times[start].Add(w)) {
			end++
		}
		best = max(best, end-start)
	}
	return best
}

// windowBound is the most requests a token bucket with burst and rate
// (per second) lets through in a closed window of length w.
func windowBound(burst int, rate float64, w time.Duration) int {
	return burst + int(math.Floor(rate*w.Seconds()+1e-9))
}

// sustainedRate estimates the rate (per second) at which requests
// arrived between from and until: the mean spacing of the requests in that
// closed interval. Measured while a token bucket is saturated and after its
// initial burst is spent, it is the bucket's refill rate. times must be
// sorted. It returns 0 when fewer than two requests qualify.
func sustainedRate(times []time.Time, from, until time.Time) float64 {
	var first, last time.Time
	n := 0
	for _, t := range times {
		if t.Before(from) || t.After(until) {
			continue
		}
		if n == 0 {
			first = t
		}
		last = t
		n++
	}
	if n < 2 || !last.After(first) {
		return 0
	}
	return float64(n-1) / last.Sub(first).Seconds()
}

// sortTimes sorts times in ascending order.
func sortTimes(times []time.Time) {
	slices.SortFunc(times, time.Time.Compare)
}
