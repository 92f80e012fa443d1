package commands

// Usage is the one-screen summary of the grammar shown with every usage
// error. It is mrkdwn that also reads well as plain text.
const Usage = "Usage: `/mpc <action>[,<action>…] <mpc> <participant>[,<participant>…] [--yes]`\n" +
	"• actions: `mute` `unmute` `hold` `unhold` `coach` `uncoach`\n" +
	"• mpc: a name (`test_mpc_1`, `\"mpc 1000\"`) or `uuid:<uuid>`\n" +
	"• participant: `all` or member ids (`/mpc list <mpc>` shows them)\n" +
	"Example: `/mpc hold test_mpc_1 all` · More: `/mpc help`"

// HelpText is the full help shown by `/mpc help` and by `/mpc` alone.
const HelpText = "*mpcbot* controls live Plivo multiparty calls (MPC).\n" +
	"\n" +
	"*Change participants*\n" +
	"`/mpc <action>[,<action>…] <mpc> <participant>[,<participant>…] [--yes]`\n" +
	"• `mute` / `unmute` — silence a participant or let them speak\n" +
	"• `hold` / `unhold` — put on hold with music, or bring back\n" +
	"• `coach` / `uncoach` — a supervisor heard only by agents, or by everyone (supervisors only; one member at a time; Plivo plays a beep)\n" +
	"• several actions in one request: `mute,hold` or `mute+hold`\n" +
	"• `<mpc>`: the call's name, quoted if it has spaces (`\"mpc 1000\"`), or `uuid:<uuid>`\n" +
	"• `<participant>`: `all`, a member id, or several ids (`111,222,333`)\n" +
	"• `--yes`: skip the confirmation asked before changing `all` in a large call\n" +
	"\n" +
	"*See who is on a call*\n" +
	"`/mpc list <mpc>` — the live roster with buttons (only you see it); `/mpc list <mpc> here` posts it to the channel\n" +
	"\n" +
	"*Examples*\n" +
	"`/mpc hold test_mpc_1 all`\n" +
	"`/mpc mute,hold test_mpc_1 38291045`\n" +
	"`/mpc coach \"mpc 1000\" 38291046`\n" +
	"`/mpc list test_mpc_1`\n" +
	"\n" +
	"Results are posted in a thread under your request, with buttons for the next step."
