package main

import "testing"

func TestCPUCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		list string
		want int
		ok   bool
	}{
		{"1", 1, true},
		{"0,1", 2, true},
		{"0-3,6", 5, true},
		{"0-1,1", 2, true},
		{"", 0, false},
		{"a", 0, false},
		{"3-1", 0, false},
		{"-1", 0, false},
		{"1,", 0, false},
	}
	for _, tt := range tests {
		got, err := cpuCount(tt.list)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("cpuCount(%q) = %d, %v; want %d, ok %v", tt.list, got, err, tt.want, tt.ok)
		}
	}
}
