/*
 * classify_rules: the shipped rule table. Order matters: the first rule
 * whose code, status and pattern match wins, so the specific wordings come
 * first, in this order of groups:
 *
 *   greylisting, rate limits, mailbox full, sender / authentication / TLS,
 *   inactive mailboxes, unknown users, bad domains, IP and host blocks,
 *   message size, virus, spam, content, policy, expiry, network, protocol,
 *   temporary failures.
 *
 * Recipient wordings come before IP blocks, and classify.c never lets an
 * ip_block rule match a reply whose enhanced status is X.1.* or X.2.*: a
 * reply about one recipient must not block a sending IP.
 * Patterns: POSIX ERE / PCRE2 common subset, case-insensitive, unanchored,
 * matched against the text after the reply code and enhanced status.
 *
 * Relaying denials from the MX of the recipient's domain are classified
 * invalid_domain: for a list sender they mean the domain is not served
 * there. relay_denied is left for operator rules (smart-host setups).
 */
#include "policy/classify_rules.h"

#define R(code, enh, pat, cat) { code, enh, pat, CAT_##cat }

const struct classify_rule_def classify_shipped[] = {
	/* ---- greylisting (postgrey, milter-greylist, sqlgrey, greylistd,
	 * spamd, rspamd, Exim and provider wordings) ---- */
	R("4xx", "*", "gr[ae]y[ -]?list", GREYLISTING),
	R("4xx", "*", "postgrey", GREYLISTING),
	R("4xx", "*", "come back (later|in [0-9])", GREYLISTING),
	R("4xx", "*", "try again in [0-9]+ (s|sec|min)", GREYLISTING),
	R("4xx", "*", "please retry in [0-9]+ (s|sec|min)", GREYLISTING),
	R("4xx", "*", "\\[GL01\\]", GREYLISTING),
	R("4xx", "*", "first time (sender|delivery|attempt)", GREYLISTING),
	R("4xx", "*", "not yet authorized to deliver", GREYLISTING),
	R("4xx", "*", "deferred (by|for) (tempfail|triplet)", GREYLISTING),

	/* ---- rate limits and volume deferrals ---- */
	R("4xx", "*", "unusual rate of unsolicited mail", RATE_LIMITED),
	R("*", "x.7.28", "rate", RATE_LIMITED),
	R("4xx", "*", "\\[TSS?0[124-8]\\]", RATE_LIMITED),
	R("4xx", "*", "temporarily deferred due to (unexpected volume|user complaints)", RATE_LIMITED),
	R("*", "*", "rate[ -]?limit", RATE_LIMITED),
	R("*", "*", "ratelimit", RATE_LIMITED),
	R("*", "*", "rate (that|which) prevents additional messages", RATE_LIMITED),
	R("*", "*", "receiving mail (at|too) .*rate", RATE_LIMITED),
	R("*", "*", "too many (connections|concurrent|sessions|simultaneous|smtp sessions|parallel)", RATE_LIMITED),
	R("*", "*", "too many (messages|mails|emails) (from|in|per|for this|sent)", RATE_LIMITED),
	R("*", "*", "too many (recipients|rcpt)", RATE_LIMITED),
	R("*", "*", "too much (mail|traffic|load)", RATE_LIMITED),
	R("*", "*", "(connection|message|sending|delivery) (rate|frequency) (limit|exceeded|too high)", RATE_LIMITED),
	R("*", "*", "slow down", RATE_LIMITED),
	R("*", "*", "throttl", RATE_LIMITED),
	R("*", "*", "exceeded (the )?(maximum|allowed|permitted) (number of )?(connections|messages|rate|limit)", RATE_LIMITED),
	R("*", "*", "has exceeded permitted limits", RATE_LIMITED),
	R("*", "*", "(message|mail|sending) (volume|quota|limit) (exceeded|reached)", RATE_LIMITED),
	R("*", "*", "(daily|hourly) (sending )?(limit|quota)", RATE_LIMITED),
	R("*", "*", "unusual sending activity", RATE_LIMITED),
	R("*", "*", "unexpected volume", RATE_LIMITED),
	R("*", "*", "max(imum)? (number of )?connections", RATE_LIMITED),
	R("*", "*", "connection limit", RATE_LIMITED),
	R("*", "*", "temporarily rate", RATE_LIMITED),
	R("4xx", "*", "server busy", RATE_LIMITED),
	R("*", "*", "\\((CON|RLY|RTR|IPTS|DYN):T[0-9]\\)", RATE_LIMITED),
	R("*", "*", "RL0000", RATE_LIMITED),
	R("*", "*", "OFR005", RATE_LIMITED),
	R("*", "*", "too many (errors|invalid recipients|bad recipients|unknown recipients)", RATE_LIMITED),
	R("*", "*", "concurrent (smtp |server )?(connections|sessions)", RATE_LIMITED),
	R("*", "*", "max(imum)? (number of )?(messages?|mails?|e-?mails?) per (connection|session)", RATE_LIMITED),
	R("*", "*", "(sending|receiving) (mail|messages|e-?mails?) too (quickly|fast)", RATE_LIMITED),
	R("*", "*", "limits for how many messages|RP-00[1-3]", RATE_LIMITED),
	R("*", "*", "rate of (messages|mails?|e-?mails?|connections|delivery|sending)[^.;]* too high", RATE_LIMITED),
	/* "try again later" qualified by a rate */
	R("4xx", "*", "(try again|retry|come back) later.*(^|[^a-z])rate([^a-z]|$)|(^|[^a-z])rate([^a-z]|$).*(try again|retry|come back) later", RATE_LIMITED),

	/* ---- mailbox full ---- */
	R("*", "*", "over ?quota", MAILBOX_FULL),
	R("*", "*", "quota (exceeded|exceed|violation|full|reached)", MAILBOX_FULL),
	R("*", "*", "exceeded (its|his|her|the|their)? ?(storage|disk|mailbox)? ?quota", MAILBOX_FULL),
	R("*", "*", "(mailbox|mail box|inbox|mail folder|user|account|recipient) (is )?(full|overfull)", MAILBOX_FULL),
	R("*", "*", "(mailbox|mail box|inbox) (size|storage) (limit|quota)", MAILBOX_FULL),
	R("*", "*", "out of (storage|disk) space", MAILBOX_FULL),
	R("*", "*", "exceeded storage allocation", MAILBOX_FULL),
	R("*", "*", "(mailbox|inbox) (has )?(exceeded|reached)", MAILBOX_FULL),
	R("*", "*", "insufficient (disk )?space (in|for) (the )?(mailbox|user|recipient)", MAILBOX_FULL),
	R("*", "*", "too many messages (on|in) (the )?(server|mailbox)", MAILBOX_FULL),
	R("*", "*", "zuviele mails", MAILBOX_FULL),
	R("*", "*", "(postfach|mailbox) (ist )?voll", MAILBOX_FULL),
	R("*", "*", "boite (du destinataire )?pleine", MAILBOX_FULL),
	R("*", "*", "(limit|limite) exc?eeded for this (email|mailbox)", MAILBOX_FULL),
	R("*", "*", "mailbox limit", MAILBOX_FULL),
	R("*", "*", "QuotaExceeded", MAILBOX_FULL),
	R("*", "*", "OverQuotaTemp", MAILBOX_FULL),
	R("*", "*", "blocks limit exceeded|inode limit exceeded", MAILBOX_FULL),
	R("*", "*", "mailbox (storage )?space", MAILBOX_FULL),
	R("*", "*", "no space left", MAILBOX_FULL),

	/* ---- TLS ---- */
	R("*", "*", "must issue a starttls", TLS_FAILURE),
	R("*", "*", "starttls (is )?required|requires? starttls|tls (is )?required|requires? tls", TLS_FAILURE),
	R("*", "*", "encryption (is )?required|requires? encryption|must (use|be) encrypted", TLS_FAILURE),
	R("*", "*", "(tls|ssl) (handshake|negotiation|connection)? ?(failed|failure|error)", TLS_FAILURE),
	R("*", "*", "certificate (verification|validation|check) failed|bad certificate|untrusted certificate", TLS_FAILURE),
	R("*", "*", "requiretls", TLS_FAILURE),
	R("*", "*", "starttls", TLS_FAILURE),

	/* ---- sender authentication (SPF, DKIM, DMARC) ---- */
	R("*", "*", "dmarc", AUTH_FAILURE),
	R("*", "*", "(spf|sender policy framework) (check )?(fail|softfail|validation|violation|error|record)", AUTH_FAILURE),
	R("*", "*", "(fails?|failed|violat[a-z]*|not pass[a-z]*) (the )?(spf|dkim)", AUTH_FAILURE),
	R("*", "*", "spf (fail|check)", AUTH_FAILURE),
	R("*", "*", "dkim[- ]?(signature)? ?(fail|invalid|verification|required|missing|check)", AUTH_FAILURE),
	R("*", "*", "unauthenticated|must authenticate", AUTH_FAILURE),
	R("*", "*", "not authorized to send (on behalf|mail for|email for|from)", AUTH_FAILURE),
	R("*", "*", "is not designated as a permitted sender", AUTH_FAILURE),
	R("*", "*", "(authentication|auth) (is )?(required|failed|failure|needed)", AUTH_FAILURE),
	R("*", "*", "client was not authenticated", AUTH_FAILURE),
	R("*", "*", "smtp auth", AUTH_FAILURE),
	R("*", "*", "(sender|message) (was )?not authenticated", AUTH_FAILURE),
	R("*", "*", "arc (validation|check) fail", AUTH_FAILURE),

	/* ---- the sender ---- */
	R("*", "*", "sender verif[a-z]* (failed|failure|error)", SENDER_REJECTED),
	R("*", "*", "(could not|cannot|unable to) verify (the )?sender", SENDER_REJECTED),
	R("*", "*", "sender callout", SENDER_REJECTED),
	R("*", "*", "sender address rejected", SENDER_REJECTED),
	R("*", "*", "(envelope )?sender (address |domain )?(is )?(rejected|refused|denied|not (allowed|accepted|permitted))", SENDER_REJECTED),
	R("*", "*", "domain of sender address", SENDER_REJECTED),
	R("*", "*", "sender domain (must|does not|doesn't|not found|resolve|has no|is not)", SENDER_REJECTED),
	R("*", "*", "envelope sender (domain )?(must|is|does)", SENDER_REJECTED),
	R("*", "*", "badmailfrom", SENDER_REJECTED),
	R("*", "*", "(invalid|bad|unknown|illegal) sender", SENDER_REJECTED),
	R("*", "*", "sender (is )?(blacklisted|blocklisted|blocked|banned)", SENDER_REJECTED),
	R("*", "*", "from address (is )?(rejected|invalid|not allowed|blocked)", SENDER_REJECTED),
	R("*", "*", "mail from (address )?(rejected|refused|denied|not accepted)", SENDER_REJECTED),
	R("*", "*", "sender .*has no (a|aaaa|mx)", SENDER_REJECTED),
	R("*", "*", "unregistered domain", SENDER_REJECTED),
	R("*", "*", "sender address has null mx", SENDER_REJECTED),
	R("*", "*", "your domain has been (blacklisted|blocklisted|blocked)", SENDER_REJECTED),
	R("*", "x.1.7-8", NULL, SENDER_REJECTED),

	/* ---- inactive mailboxes ---- */
	R("*", "*", "(mailbox|account|user|address|recipient)( account)? (has been |is |was )?(disabled|deactivated|suspended|inactive|locked|frozen|closed)", MAILBOX_INACTIVE),
	R("*", "*", "(disabled|inactive|suspended|deactivated|closed|expired|dormant|locked) (mailbox|account|user|address)", MAILBOX_INACTIVE),
	R("*", "*", "(account|mailbox) (is )?not (active|activated|enabled)", MAILBOX_INACTIVE),
	R("*", "*", "(account|mailbox) (has been )?(discontinued|terminated|archived)", MAILBOX_INACTIVE),
	R("*", "*", "DisabledUser", MAILBOX_INACTIVE),
	R("*", "*", "\\[SUSPEND\\]", MAILBOX_INACTIVE),
	R("*", "*", "(mailbox|account) (is )?(currently )?(suspended|disabled|unavailable due to inactivity)", MAILBOX_INACTIVE),
	R("*", "*", "konto niedostepne", MAILBOX_INACTIVE),
	R("*", "*", "boite (du destinataire )?archivee", MAILBOX_INACTIVE),
	R("*", "*", "no longer (active|in use|used|valid|available|exists)", MAILBOX_INACTIVE),

	/* ---- unknown users ---- */
	R("*", "*", "recipient address rejected: domain not found", INVALID_DOMAIN),
	R("*", "*", "(user|recipient|mailbox|address|account|addressee)( name)? (is )?(unknown|not found|not known|unrecognized|not recognized)", INVALID_RECIPIENT),
	R("*", "*", "unknown (user|recipient|mailbox|address|local[- ]part|account|alias|addressee)", INVALID_RECIPIENT),
	R("*", "*", "no such (user|recipient|mailbox|account|address|person|local user|alias|addressee)", INVALID_RECIPIENT),
	R("*", "*", "(user|recipient|rcpt|mailbox|address|account|addressee|alias)( [^ ]+)? (does not|doesn't|did not|not|no longer) exists?", INVALID_RECIPIENT),
	R("*", "*", "(does not|doesn't) have an? ([a-z0-9.-]+ )?account", INVALID_RECIPIENT),
	R("*", "*", "not an active (address|account|mailbox)", INVALID_RECIPIENT),
	R("*", "*", "not a (known|valid) (user|recipient|mailbox|address|account)", INVALID_RECIPIENT),
	R("*", "*", "is not a known user", INVALID_RECIPIENT),
	R("*", "*", "invalid (recipient|mailbox|user|address|account|e-?mail address|destination)", INVALID_RECIPIENT),
	R("*", "*", "(recipient|mailbox|address) (is )?invalid", INVALID_RECIPIENT),
	R("*", "*", "mailbox (is )?(unavailable|not available|not found|does not exist|unknown)", INVALID_RECIPIENT),
	R("*", "*", "(no|not a) (mail ?box|mail-box|mailbox) (here|available|by that name|found|for)", INVALID_RECIPIENT),
	R("*", "*", "mail-box not found", INVALID_RECIPIENT),
	R("*", "*", "no mailbox", INVALID_RECIPIENT),
	R("*", "*", "badrcptto", INVALID_RECIPIENT),
	R("*", "*", "bad[_ ]recipient", INVALID_RECIPIENT),
	R("*", "*", "RecipNotFound|RecipientNotFound|Recipient not found", INVALID_RECIPIENT),
	R("*", "*", "recipient address rejected: (user unknown|undeliverable|unknown user|no such|does not exist|invalid|address lookup failed)", INVALID_RECIPIENT),
	R("*", "x.4.1", "recipient address rejected: access denied", INVALID_RECIPIENT),
	R("*", "*", "access denied\\. AS\\([0-9]+\\)", INVALID_RECIPIENT),
	R("*", "*", "undeliverable address", INVALID_RECIPIENT),
	R("*", "*", "(recipient|address|rcpt) (was )?(rejected|refused|unknown)", INVALID_RECIPIENT),
	R("*", "*", "not our customer", INVALID_RECIPIENT),
	R("*", "*", "delivery error: dd", INVALID_RECIPIENT),
	R("*", "*", "(user|addressee) not (local|listed|here)", INVALID_RECIPIENT),
	R("*", "*", "(unable to|cannot|could not) (find|deliver to|locate) (the )?(recipient|user|mailbox)", INVALID_RECIPIENT),
	R("*", "*", "i cannot deliver mail for", INVALID_RECIPIENT),
	R("*", "*", "(address|user|recipient) lookup failed", INVALID_RECIPIENT),
	R("*", "*", "no longer on (this |the )?server", INVALID_RECIPIENT),
	R("*", "*", "(utilisateur|destinataire|adresse)( d au moins un destinataire)? (inconnu|invalide|introuvable)", INVALID_RECIPIENT),
	R("*", "*", "(benutzer|empfaenger|empfanger|empfänger) (unbekannt|existiert nicht)", INVALID_RECIPIENT),
	R("*", "*", "nie istnieje", INVALID_RECIPIENT),
	R("*", "*", "usuario (desconocido|no existe)|no existe", INVALID_RECIPIENT),
	R("*", "*", "utente (sconosciuto|inesistente)", INVALID_RECIPIENT),
	R("*", "*", "(mailbox|user) name not allowed", INVALID_RECIPIENT),
	R("*", "*", "address unknown", INVALID_RECIPIENT),
	R("*", "*", "mailbox unavailable", INVALID_RECIPIENT),
	R("*", "*", "no such id", INVALID_RECIPIENT),
	R("*", "*", "user (is )?(not found|missing)", INVALID_RECIPIENT),
	R("*", "*", "banned recipient", INVALID_RECIPIENT),
	R("5xx", "*", "(recipient|rcpt to).* (denied|not allowed)", INVALID_RECIPIENT),
	R("5xx", "*", "permanent failure for one or more recipients", INVALID_RECIPIENT),
	R("*", "*", "no account by that name", INVALID_RECIPIENT),
	R("*", "*", "OFR_416", INVALID_RECIPIENT),

	/* ---- the sending host's identity (HELO, rDNS): before the domain
	 * rules, which would take "Helo command rejected: Host not found" ---- */
	R("*", "*", "helo command rejected", IP_BLOCK),
	R("*", "*", "client host (\\[[^]]*\\] )?(rejected|blocked)", IP_BLOCK),
	R("*", "*", "(cannot|can't|unable to) find your (reverse )?hostname", IP_BLOCK),
	R("*", "*", "does not relay dynamically", IP_BLOCK),
	R("*", "*", "dynamic(ally)?[ -](assigned )?(ip|address|range|pool)|dial-?up|residential (ip|address)", IP_BLOCK),

	/* ---- the recipient's domain ---- */
	R("*", "*", "null mx", INVALID_DOMAIN),
	R("*", "*", "(domain|host)( name)? (is )?(not found|unknown|does not exist|doesn't exist|not exist|invalid)", INVALID_DOMAIN),
	R("*", "*", "no such (domain|host)", INVALID_DOMAIN),
	R("*", "*", "unknown (domain|host)", INVALID_DOMAIN),
	R("*", "*", "unrouteable (address|domain)", INVALID_DOMAIN),
	R("*", "*", "unable to route", INVALID_DOMAIN),
	R("*", "*", "(couldn't|could not|can't|cannot) find any host named", INVALID_DOMAIN),
	R("*", "*", "(couldn't|could not|can't) find a mail exchanger", INVALID_DOMAIN),
	R("*", "*", "no (mx|mail exchanger|mx record|mx or a record)s? (for|found|record)", INVALID_DOMAIN),
	R("*", "*", "domain (is )?not (hosted|served|handled|local|configured)", INVALID_DOMAIN),
	R("*", "*", "in my list of (allowed )?rcpthosts|not one of my rcpthosts", INVALID_DOMAIN),
	R("*", "*", "relay(ing)? (access )?(denied|not permitted|not allowed|prohibited|forbidden|refused)", INVALID_DOMAIN),
	R("*", "*", "(isn't|is not|not) (allowed|permitted|authorized) to relay", INVALID_DOMAIN),
	R("*", "*", "trying to use me .*as a relay", INVALID_DOMAIN),
	R("*", "*", "(we do not|we don't|does not) relay", INVALID_DOMAIN),
	R("*", "*", "not (a )?(local|hosted) domain", INVALID_DOMAIN),
	R("*", "*", "domain (owner )?has changed", INVALID_DOMAIN),
	R("*", "*", "tenant or domain not found", INVALID_DOMAIN),
	R("*", "*", "domain (name )?(has )?expired", INVALID_DOMAIN),
	R("5xx", "*", "host unknown", INVALID_DOMAIN),

	/* ---- the sending IP or host (DNSBLs, reputation, rDNS, HELO) ---- */
	R("*", "*", "uribl|surbl|uri ?bl|dbl\\.spamhaus|url in this email", SPAM_CONTENT),
	R("*", "*", "low reputation of the sending domain", SPAM_CONTENT),
	R("*", "*", "unusual rate of unsolicited mail originating from your ip", IP_BLOCK),
	R("*", "*", "low reputation of the sending ip", IP_BLOCK),
	R("*", "*", "blocked using spam pattern", SPAM_CONTENT),
	R("*", "*", "blocked using", IP_BLOCK),
	R("*", "*", "(listed|found|blocked) (at|in|on|by) [a-z0-9.-]*(spamhaus|spamcop|sorbs|barracuda|uceprotect|abuseat|cbl|psbl|spameatingmonkey|mailspike|backscatterer|senderscore|invaluement|nix)", IP_BLOCK),
	R("*", "*", "(zen|sbl|xbl|pbl|sbl-xbl)\\.spamhaus", IP_BLOCK),
	R("*", "*", "spamhaus", IP_BLOCK),
	R("*", "*", "spamcop", IP_BLOCK),
	R("*", "*", "barracuda(central)?.*(reputation|block|listed)", IP_BLOCK),
	R("*", "*", "b\\.barracudacentral", IP_BLOCK),
	R("*", "*", "sorbs", IP_BLOCK),
	R("*", "*", "uceprotect", IP_BLOCK),
	R("*", "*", "abuseat|cbl\\.", IP_BLOCK),
	R("*", "*", "(dns|rbl|dnsbl|rhsbl|ip)[ -]?(bl|blacklist|blocklist|block list|black list)", IP_BLOCK),
	R("*", "*", "(^|[^a-z])(dnsbl|rbl)", IP_BLOCK),
	R("*", "*", "(is|are|been|was|ip|address) (black|block)[ -]?listed", IP_BLOCK),
	R("*", "*", "(black|block)[ -]?list(ed)?", IP_BLOCK),
	R("*", "*", "listed (at|in|on|by) ", IP_BLOCK),
	R("*", "*", "is on (our|a|the) .*(block|black|deny)", IP_BLOCK),
	R("*", "*", "\\(S3[0-9]{3}\\)", IP_BLOCK),
	R("*", "*", "\\[BL[0-9]{2}\\]", IP_BLOCK),
	R("*", "*", "\\[TSS?0?3\\]|\\[TSS09\\]", IP_BLOCK),
	R("*", "*", "permanently deferred", IP_BLOCK),
	R("*", "*", "\\((CON|RLY|DYN|HVU|PTR|IPTS|RTR):[A-Z]?B[0-9]\\)", IP_BLOCK),
	R("*", "*", "(SC|DY|OU)-00[0-9]", IP_BLOCK),
	R("*", "*", "BL0000", IP_BLOCK),
	R("*", "*", "comcast block", IP_BLOCK),
	R("*", "*", "(poor|bad|low|negative) (ip )?reputation", IP_BLOCK),
	R("*", "*", "reputation (of|for) (the |your )?(sending )?(ip|host|server|network)", IP_BLOCK),
	R("*", "*", "banned sending ip", IP_BLOCK),
	R("*", "*", "banned sender", IP_BLOCK),
	R("*", "*", "traffic not accepted from this ip", IP_BLOCK),
	R("*", "*", "(your|sending|client|sender|the) ip( address)? .*(is |was |has been )?(blocked|banned|blacklisted|blocklisted|listed|rejected|not allowed|denied)", IP_BLOCK),
	R("*", "*", "(ip|host|client)( address)? (is )?(blocked|banned|blacklisted|blocklisted)", IP_BLOCK),
	R("*", "*", "client host (\\[[^]]*\\] )?(rejected|blocked)", IP_BLOCK),
	R("*", "*", "client host blocked", IP_BLOCK),
	R("*", "*", "connections? (will not be|are not|is not|not) (accepted|allowed)", IP_BLOCK),
	R("*", "*", "not allowed to (connect|send mail from|send from)", IP_BLOCK),
	R("*", "*", "(cannot|can't|unable to) find your (reverse )?hostname", IP_BLOCK),
	R("*", "*", "(reverse dns|rdns|ptr( record| resource record)?|reverse lookup) (lookup )?(failed|failure|missing|required|does not match|mismatch|not found|entry)", IP_BLOCK),
	R("*", "*", "bad dns ptr", IP_BLOCK),
	R("*", "*", "(no|missing|invalid) (reverse dns|rdns|ptr)", IP_BLOCK),
	R("*", "*", "helo command rejected", IP_BLOCK),
	R("*", "*", "(bad|invalid) helo|helo .*(rejected|invalid|not allowed)", IP_BLOCK),
	R("*", "*", "part of their network", IP_BLOCK),
	R("*", "*", "proofpoint|cloudmark|trend ?micro|mailspike|senderbase|talos|ivmsip", IP_BLOCK),
	R("*", "*", "dnsbl-lookup|ipcheck\\.proofpoint|ers\\.trendmicro", IP_BLOCK),
	R("*", "*", "nemesis esmtp service not available", IP_BLOCK),
	R("*", "*", "(access|service|connection) (is )?(denied|refused) (for|to) (your|this) ip", IP_BLOCK),
	R("*", "*", "service (is )?(unavailable|not available); (client )?host", IP_BLOCK),
	R("*", "*", "(refused|rejected|denied) (to talk|to accept).*(you|your ip)", IP_BLOCK),
	R("*", "*", "\\[CS0[0-9]\\]", POLICY_REJECTION),
	R("*", "*", "OFR00[46]", IP_BLOCK),
	R("*", "*", "bulk (mailer|mail) (from this|ip)", IP_BLOCK),
	R("*", "*", "ip (address )?(you're|you are|being) using .*not (authorized|allowed|permitted)", IP_BLOCK),
	R("*", "*", "fcrdns|forward[- ]confirmed reverse", IP_BLOCK),
	R("*", "*", "(reverse dns|rdns|ptr) (check|verification|test|validation) (failed|failure|error)", IP_BLOCK),
	R("*", "*", "does not have a (ptr|reverse dns|rdns)|missing ptr|without (a )?(ptr|reverse dns|rdns)", IP_BLOCK),
	R("*", "*", "your access to this mail system", IP_BLOCK),
	R("*", "*", "adresse ip (source )?bloqu", IP_BLOCK),
	R("*", "*", "tosa@rx\\.t-online\\.de|\\(BL\\)$", IP_BLOCK),
	/* Apple (iCloud) and others: a bare "Blocked" with a policy status */
	R("5xx", "x.7.0", "^blocked([^a-z]|$)", IP_BLOCK),

	/* ---- message size ---- */
	R("*", "*", "(message|mail|email|data) (size )?(is )?(too (big|large|long)|exceeds|over|larger)", MESSAGE_TOO_LARGE),
	R("*", "*", "(size|length) (limit|exceeds|exceeded)", MESSAGE_TOO_LARGE),
	R("*", "*", "exceeds (the )?(maximum|max|size|fixed|message size|allowed|databytes)", MESSAGE_TOO_LARGE),
	R("*", "*", "too (big|large) for (this|the) (system|recipient|server|organization)", MESSAGE_TOO_LARGE),
	R("*", "*", "SIZE=", MESSAGE_TOO_LARGE),
	R("*", "*", "SizeLimit", MESSAGE_TOO_LARGE),
	R("*", "*", "max(imum)? (message )?size", MESSAGE_TOO_LARGE),
	R("*", "*", "message length exceeds", MESSAGE_TOO_LARGE),
	R("*", "*", "databytes", MESSAGE_TOO_LARGE),

	/* ---- virus ---- */
	R("*", "*", "(spam|junk) or virus", SPAM_CONTENT),
	R("*", "*", "virus|malware|infected|trojan|worm found|ransomware|malicious (content|attachment|payload|file)", VIRUS_CONTENT),

	/* ---- spam ---- */
	R("*", "*", "unsolicited", SPAM_CONTENT),
	R("*", "*", "spam", SPAM_CONTENT),
	R("*", "*", "bulk (e-?mail|mail)", SPAM_CONTENT),
	R("*", "*", "junk ?mail|junk", SPAM_CONTENT),
	R("*", "*", "(^|[^a-z])ube([^a-z]|$)", SPAM_CONTENT),
	R("*", "*", "uribl|surbl|dbl\\.|uri ?bl", SPAM_CONTENT),
	R("*", "*", "url in this email", SPAM_CONTENT),
	R("*", "*", "mass mail", SPAM_CONTENT),
	R("*", "*", "phish", SPAM_CONTENT),
	R("*", "*", "scored? [0-9.]+ (spam )?points|score .*too high|over (the )?(spam )?threshold", SPAM_CONTENT),
	R("*", "*", "(suspicious|fraud|scam)", SPAM_CONTENT),
	R("*", "*", "low reputation of the sending domain", SPAM_CONTENT),
	R("*", "*", "(message|mail|email) content (rejected|denied|not accepted|refused)", SPAM_CONTENT),
	R("*", "*", "content (filter|check)", SPAM_CONTENT),
	R("*", "*", "profile .*may consider spam|matches a profile", SPAM_CONTENT),
	R("*", "*", "OUK_513", SPAM_CONTENT),
	R("*", "*", "(message|mail) (was )?(classified|identified|detected|flagged|marked) as", SPAM_CONTENT),
	R("*", "*", "antispam|anti-spam", SPAM_CONTENT),
	R("*", "*", "spamprofiler|mailmarshal|dspam|esets", SPAM_CONTENT),

	/* ---- content ---- */
	R("*", "*", "attachment|file (type|extension)|banned file|executable", CONTENT_POLICY),
	R("*", "*", "rfc ?(5322|2822|822)|header (is )?(invalid|malformed|missing)|(missing|invalid|malformed|duplicate) (message-?id|date|from|header)", CONTENT_POLICY),
	R("*", "*", "(message|mail) (body|content|header)s? .*(not allowed|prohibited|rejected|policy|violation)", CONTENT_POLICY),
	R("*", "*", "content policy|prohibited content|contains (prohibited|forbidden|disallowed)", CONTENT_POLICY),
	R("*", "*", "email policy violation", CONTENT_POLICY),
	R("*", "*", "(shortened|shortener) url|url shortener", CONTENT_POLICY),
	R("*", "*", "bare (lf|linefeed|line feed)", CONTENT_POLICY),
	R("*", "*", "8bitmime|8-?bit (data|characters|content)|non-?ascii", CONTENT_POLICY),

	/* ---- policy ---- */
	R("*", "*", "content presents a potential security", CONTENT_POLICY),
	R("*", "*", "policy|administrative prohibition|prohibited", POLICY_REJECTION),
	R("*", "*", "not (authorized|permitted|allowed) to (send|deliver|receive|post)", POLICY_REJECTION),
	R("*", "*", "access denied|denied access|permission denied", POLICY_REJECTION),
	R("*", "*", "(rejected|refused|blocked) by (the )?(recipient|administrator|admin|organization|user|server|domain|rule|filter)", POLICY_REJECTION),
	R("*", "*", "only accepts mail from|restricted (group|recipient|list)|not allowed to send to this group", POLICY_REJECTION),
	R("*", "*", "SenderNotAuthenticatedForGroup|AcceptFromMember|RESOLVER\\.RST", POLICY_REJECTION),
	R("*", "*", "external (forwarding|senders)", POLICY_REJECTION),

	/* ---- expiry ---- */
	R("*", "*", "(message|delivery|mail)( time)? (has )?expired", EXPIRED),
	R("*", "*", "QUEUE\\.Expired|expired in queue|in (the )?queue too long|too long in (the )?queue", EXPIRED),
	R("*", "*", "(retry|delivery) (timeout|time|period) (exceeded|expired)", EXPIRED),
	R("*", "*", "(could not|couldn't|unable to) be delivered (for|within|in) [0-9]+", EXPIRED),
	R("*", "*", "giving up|gave up|not going to try again", EXPIRED),
	R("*", "*", "retry time not reached for any host after a long failure period", EXPIRED),
	R("*", "*", "(lifetime|maximum time|max(imum)? age) (in queue )?(exceeded|reached)", EXPIRED),

	/* ---- network ---- */
	R("*", "*", "temporary (lookup|dns) failure", TEMP_SERVER_FAILURE),
	R("*", "*", "(connection|connect) (timed out|timeout|refused|reset|dropped|lost|closed|failed)", NETWORK_ERROR),
	R("*", "*", "lost connection|connection (was )?(lost|dropped|closed) (with|by|unexpectedly)", NETWORK_ERROR),
	R("*", "*", "timed out|timeout (exceeded|waiting)|time-?out", NETWORK_ERROR),
	R("*", "*", "no route to host|network (is )?unreachable|host (is )?unreachable|unreachable", NETWORK_ERROR),
	R("*", "*", "socketerror|socket error|read error|write error|broken pipe|econnrefused|econnreset", NETWORK_ERROR),
	R("*", "*", "(wasn't|was not|were not) able to establish an smtp connection|unable to connect|could not connect|can't connect|cannot connect", NETWORK_ERROR),
	R("*", "*", "(mail ?loop|routing loop|too many hops|hop count exceeded|loop detected|loops back to myself)", NETWORK_ERROR),
	R("*", "*", "dns (lookup )?(failure|failed|error|timeout|server failure)|servfail|lookup (failure|failed)", NETWORK_ERROR),

	/* ---- protocol ---- */
	R("*", "*", "bad sequence of commands|out of sequence|(command|sequence) (not )?(recognized|unrecognized|not implemented)", PROTOCOL_ERROR),
	R("*", "*", "syntax error|unrecognized command|command unrecognized|unknown command|invalid command|command not (allowed|permitted)", PROTOCOL_ERROR),
	R("*", "*", "line (is )?too long|command line too long|too many (bad|invalid|unrecognized) commands", PROTOCOL_ERROR),
	R("*", "*", "pipelining|protocol (error|violation)|improper use of smtp", PROTOCOL_ERROR),
	R("*", "*", "(must|should) (send|say) (ehlo|helo)|send (helo|ehlo) first|(helo|ehlo) (first|required)", PROTOCOL_ERROR),
	R("*", "*", "not supported|unsupported", PROTOCOL_ERROR),

	/* ---- greylisting daemons' bare defaults (milter-greylist, spamd,
	 * rspamd): nothing but "try again later" on a 450/451 ---- */
	R("450,451", "*", "^(please )?try again later\\.?$", GREYLISTING),
	R("451", "*", "^temporary failure, please try again later", GREYLISTING),
	R("451", "*", "^temporarily unable to process your (e-?mail|message)\\. please try again later", GREYLISTING),
	R("4xx", "*", "temporarily (deferred|rejected).*(retry|try again) (later|in)", GREYLISTING),

	/* ---- temporary server trouble ---- */
	R("*", "*", "(insufficient|not enough) (system )?(storage|resources|disk|memory)|disk (is )?full|system (resources|storage)", TEMP_SERVER_FAILURE),
	R("*", "*", "temporar(y|ily) (local )?(problem|failure|error|unavailable|not available|lookup failure|rejected|deferred|unable)", TEMP_SERVER_FAILURE),
	R("*", "*", "(local|internal|server|system) (error|problem|failure)", TEMP_SERVER_FAILURE),
	R("*", "*", "qq (temporary|permanent) problem", TEMP_SERVER_FAILURE),
	R("*", "*", "(service|server|system) (is )?(currently )?(unavailable|not available|busy|overloaded|shutting down|down for maintenance)", TEMP_SERVER_FAILURE),
	R("*", "*", "(try|please try|retry) (again )?later", TEMP_SERVER_FAILURE),
	R("*", "*", "(mail|queue|delivery) (system )?(is )?(full|disabled|paused|suspended)", TEMP_SERVER_FAILURE),
	R("*", "*", "closing (transmission|connection)|shutting down", TEMP_SERVER_FAILURE),
	R("*", "*", "blame it on the weather|internal error", TEMP_SERVER_FAILURE),
	R("*", "*", "unable to (process|accept|receive)", TEMP_SERVER_FAILURE),
	R("4xx", "*", "deferred|defer", TEMP_SERVER_FAILURE),

	/* ---- last resort: a permanent refusal that said why not ---- */
	R("5xx", "*", "blocked|refused|rejected|not accepted|denied", POLICY_REJECTION),
};

const size_t classify_shipped_count =
    sizeof(classify_shipped) / sizeof(classify_shipped[0]);

/* RFC 3463 and the IANA "Enumerated Status Codes" registry. */
static enum reply_category
classify_fallback_enhanced(int code_class, int subject, int detail)
{
	switch (subject) {
	case 1:
		switch (detail) {
		case 1: case 3: case 4: case 6: return CAT_INVALID_RECIPIENT;
		case 2: case 10: return CAT_INVALID_DOMAIN;
		case 7: case 8: return CAT_SENDER_REJECTED;
		default: return CAT_UNKNOWN;
		}
	case 2:
		switch (detail) {
		case 1: return CAT_MAILBOX_INACTIVE;
		case 2: return CAT_MAILBOX_FULL;
		case 3: return CAT_MESSAGE_TOO_LARGE;
		case 4: return CAT_TEMP_SERVER_FAILURE;
		default: return CAT_UNKNOWN;
		}
	case 3:
		switch (detail) {
		case 4: return CAT_MESSAGE_TOO_LARGE;
		case 3: return CAT_PROTOCOL_ERROR;
		default: return CAT_TEMP_SERVER_FAILURE;
		}
	case 4:
		switch (detail) {
		case 4: return code_class == 5 ? CAT_INVALID_DOMAIN : CAT_NETWORK_ERROR;
		case 5: return CAT_TEMP_SERVER_FAILURE;
		case 7: return CAT_EXPIRED;
		default: return CAT_NETWORK_ERROR;
		}
	case 5:
		return detail == 3 ? CAT_RATE_LIMITED : CAT_PROTOCOL_ERROR;
	case 6:
		return CAT_CONTENT_POLICY;
	case 7:
		/* Microsoft's extended codes (Exchange Online, Outlook.com) */
		if (detail == 511 || detail == 708 || (detail >= 606 && detail <= 649))
			return CAT_IP_BLOCK;
		if (code_class == 4 && detail >= 500 && detail <= 699)
			return CAT_RATE_LIMITED;
		switch (detail) {
		case 4: case 5: case 6: case 10: case 11: case 30:
			return CAT_TLS_FAILURE;
		case 7: return CAT_CONTENT_POLICY;
		case 8: case 9: case 12: case 14: case 20: case 21: case 22:
		case 23: case 24: case 25: case 26: case 29:
			return CAT_AUTH_FAILURE;
		case 13: return CAT_MAILBOX_INACTIVE;
		case 16: return CAT_MESSAGE_TOO_LARGE;
		case 17: return CAT_INVALID_RECIPIENT;
		case 18: return CAT_INVALID_DOMAIN;
		case 27: return CAT_SENDER_REJECTED;
		case 28: return CAT_RATE_LIMITED;
		default: return CAT_POLICY_REJECTION;
		}
	default:
		return CAT_UNKNOWN;
	}
}

/* RFC 5321 4.2.2 (and RFC 7504 for 521/556). */
static enum reply_category
classify_fallback_code(int code)
{
	switch (code) {
	case 421: return CAT_TEMP_SERVER_FAILURE;
	case 451: return CAT_TEMP_SERVER_FAILURE;
	case 452: return CAT_TEMP_SERVER_FAILURE;
	case 454: return CAT_TLS_FAILURE;
	case 500: case 501: case 502: case 503: case 504: case 555:
		return CAT_PROTOCOL_ERROR;
	case 530: case 534: case 535: return CAT_AUTH_FAILURE;
	case 538: return CAT_TLS_FAILURE;
	case 551: case 553: return CAT_INVALID_RECIPIENT;
	case 552: return CAT_MAILBOX_FULL;
	case 556: return CAT_INVALID_DOMAIN;
	default: return CAT_UNKNOWN;
	}
}

enum reply_category
classify_fallback(int code, bool has_enhanced, int cls, int subject, int detail)
{
	enum reply_category c = CAT_UNKNOWN;

	if (code != 0 && code / 100 != 4 && code / 100 != 5)
		return CAT_UNKNOWN;
	if (has_enhanced && cls != 2)
		c = classify_fallback_enhanced(code ? code / 100 : cls, subject,
		    detail);
	if (c == CAT_UNKNOWN && code != 0)
		c = classify_fallback_code(code);
	return c;
}
