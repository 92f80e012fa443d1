package commands

// TEMPORARY until the grammar and fleet branches are merged.

import (
	"context"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

type CancelTimer struct{ ID string }

func (CancelTimer) isCommand()     {}
func (c CancelTimer) Text() string { return "cancel-timer " + c.ID }

type localTimers struct {
	mu sync.Mutex
	m  map[string]Timer
}

func NewLocalTimers() TimerStore { return &localTimers{m: map[string]Timer{}} }
func (l *localTimers) Add(_ context.Context, t Timer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[t.ID] = t
	return nil
}
func (l *localTimers) Supersede(_ context.Context, mpc plivo.MPC, ms []plivo.Member, fs []plivo.Field) ([]Superseded, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Superseded
	for id, t := range l.m {
		if !t.SameMPC(mpc) {
			continue
		}
		nt, lost := t.Supersede(ms, fs)
		if len(lost) == 0 {
			continue
		}
		if nt.Finished() {
			delete(l.m, id)
		} else {
			l.m[id] = nt
		}
		out = append(out, Superseded{Timer: nt, Lost: lost})
	}
	return out, nil
}
func (l *localTimers) Cancel(_ context.Context, id string) (Timer, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.m[id]
	delete(l.m, id)
	return t, ok, nil
}
func (l *localTimers) Claim(_ context.Context, now time.Time, _ time.Duration) ([]Timer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Timer
	for id, t := range l.m {
		if !t.Due.After(now) {
			out = append(out, t)
			delete(l.m, id)
		}
	}
	return out, nil
}
func (l *localTimers) Done(context.Context, string) error { return nil }
func (l *localTimers) Pending(context.Context) ([]Timer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Timer
	for _, t := range l.m {
		out = append(out, t)
	}
	return out, nil
}

type Grammar struct{ TimedMax time.Duration }

func (g Grammar) Parse(text string) (Command, error) { return Parse(text) }

func (g Grammar) DecodeButton(value string) (Button, error) { return DecodeButton(value) }

type Calls struct{ Here bool }

func (Calls) isCommand() {}
func (c Calls) Text() string {
	if c.Here {
		return "calls here"
	}
	return "calls"
}
