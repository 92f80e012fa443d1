package bot

import (
	"testing"

	"github.com/mpcbot/mpcbot/commands"
)

// BenchmarkReplyRender measures what the reply path of one typed change
// costs the CPU before any I/O: rendering the anchor and the result (with
// its follow-up buttons) and encoding each as a chat.postMessage form.
//
//	go test -run '^$' -bench BenchmarkReplyRender -count 10 ./bot
func BenchmarkReplyRender(b *testing.B) {
	c, err := commands.Parse("mute test_mpc_1 101")
	if err != nil {
		b.Fatal(err)
	}
	mute := c.(commands.Change)
	o := outcome(mute, okResult(mute, "be5a333a-ee0f-11ea-b02e-0242ac110003")...)
	o.FollowUps = testService.FollowUps(o)
	b.Run("anchor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := messageForm(renderAnchor(requester, mute, commands.Typed)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("result", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := messageForm(renderResult(o, issued)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
