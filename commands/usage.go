package commands

// Usage is the one-screen summary of the grammar shown with every usage
// error. It is mrkdwn that also reads well as plain text.
const Usage = "Usage: `/mpc <action>[,<action>…] <mpc> <participant>[,<participant>…] [for <duration>] [--yes]`\n" +
	"• actions: `mute` `unmute` `hold` `unhold` `coach` `uncoach`\n" +
	"• mpc: a name (`test_mpc_1`, `\"mpc 1000\"`) or `uuid:<uuid>`\n" +
	"• participant: `all` or member ids (`/mpc list <mpc>` shows them)\n" +
	"• for: undo it by itself after `90s`, `2m`, `1h`…\n" +
	"Example: `/mpc hold test_mpc_1 1002 for 2m` · Live calls: `/mpc` · More: `/mpc help`"

// HelpText is the full help shown by `/mpc help`, one screen on a phone.
const HelpText = "*mpcbot* controls live Plivo multiparty calls (MPC).\n" +
	"`/mpc` — the live calls, only to you (`/mpc calls here`: to the channel)\n" +
	"`/mpc list <mpc>` — who is on a call, with buttons (add `here` for the channel)\n" +
	"\n" +
	"*Change participants*\n" +
	"`/mpc <action>[,<action>…] <mpc> <participant>[,<participant>…] [for <duration>] [--yes]`\n" +
	"• `mute` / `unmute` — silence a participant or let them speak\n" +
	"• `hold` / `unhold` — put on hold with music, or bring back\n" +
	"• `coach` / `uncoach` — a supervisor heard only by agents, or by all (supervisors only; one member at a time; Plivo beeps)\n" +
	"• several actions: `mute,hold` or `mute+hold`\n" +
	"• `<mpc>`: a name, quoted if it has spaces (`\"mpc 1000\"`), or `uuid:<uuid>`\n" +
	"• `<participant>`: `all` or member ids (`111,222`)\n" +
	"• `for <duration>`: undo it by itself after `90s`, `2m`, `1h`… (*Cancel timer* keeps the change)\n" +
	"• `--yes`: no confirmation before changing `all` in a large call\n" +
	"\n" +
	"*Examples*\n" +
	"`/mpc hold test_mpc_1 all`\n" +
	"`/mpc hold test_mpc_1 1002 for 2m`\n" +
	"`/mpc coach \"mpc 1000\" 38291046`\n" +
	"\n" +
	"Results go in a thread under your request, with buttons for the next step."
