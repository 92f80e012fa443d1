package commands_test

import (
	"testing"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/commands/timerstest"
)

func TestLocalTimersConformance(t *testing.T) {
	t.Parallel()
	timerstest.Run(t, func(*testing.T) commands.TimerStore { return commands.NewLocalTimers() })
}
