/*
 * Tests for classify: real replies to categories (with the block, greylist
 * and rate-limit wordings of issues 3 and 4, and recipient replies that
 * must never be blocks), actions, code-only
 * fallbacks, operator rules, garbage input. test_dev_accuracy prints the
 * accuracy on ../shared/data/replies-dev.tsv when it exists (no assertion).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/classify.h"

static struct classify_rules *rules;

static int
setup(void **state)
{
	(void)state;
	rules = classify_rules_new();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	classify_rules_free(rules);
	return 0;
}

static enum reply_category
classify_line(const struct classify_rules *r, const char *line)
{
	char enh[CLASSIFY_ENHANCED_MAX];
	const char *text;
	int code;

	classify_parse_line(line, &code, enh, &text);
	return classify_reply(r, code, enh, text);
}

struct reply_case {
	const char *line;
	enum reply_category want;
};

static const struct reply_case replies[] = {
	/* Gmail */
	{ "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. Learn more at https://support.google.com/mail/?p=NoSuchUser a1si123.45 - gsmtp", CAT_INVALID_RECIPIENT },
	{ "550-5.2.1 The email account that you tried to reach is disabled. Learn more at https://support.google.com/mail/?p=DisabledUser", CAT_MAILBOX_INACTIVE },
	{ "452-4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp", CAT_MAILBOX_FULL },
	{ "421-4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.", CAT_RATE_LIMITED },
	{ "550-5.7.1 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked.", CAT_IP_BLOCK },
	{ "550-5.7.1 [192.0.2.1] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", CAT_SPAM_CONTENT },
	{ "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your DKIM domain. To protect our users from spam, mail sent from your domain has been temporarily rate limited.", CAT_RATE_LIMITED },
	{ "550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM.", CAT_AUTH_FAILURE },
	{ "552-5.2.3 Your message exceeded Google's message size limits.", CAT_MESSAGE_TOO_LARGE },
	{ "552-5.7.0 This message was blocked because its content presents a potential security issue.", CAT_CONTENT_POLICY },
	{ "450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", CAT_RATE_LIMITED },
	{ "550-5.7.1 [192.0.2.1] Gmail has detected that this message is likely suspicious due to the very low reputation of the sending domain.", CAT_SPAM_CONTENT },
	{ "421-4.7.0 TLS required for RCPT domain, closing connection.", CAT_TLS_FAILURE },
	/* Microsoft */
	{ "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.", CAT_IP_BLOCK },
	{ "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM0PR01MB1234.eurprd01.prod.exchangelabs.com]", CAT_INVALID_RECIPIENT },
	{ "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)", CAT_RATE_LIMITED },
	{ "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.", CAT_IP_BLOCK },
	{ "550 5.7.606 Access denied, banned sending IP [192.0.2.1]. To request removal from this list please visit https://sender.office.com/", CAT_IP_BLOCK },
	{ "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DM6NAM12FT001.eop-nam12.prod.protection.outlook.com]", CAT_INVALID_RECIPIENT },
	{ "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", CAT_INVALID_RECIPIENT },
	{ "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded", CAT_MAILBOX_FULL },
	{ "550 5.7.509 Access denied, sending domain example.org does not pass DMARC verification and has a DMARC policy of reject.", CAT_AUTH_FAILURE },
	{ "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains.", CAT_SENDER_REJECTED },
	{ "550 5.7.512 Access denied, message must be RFC 5322 section 3.6.2 compliant.", CAT_CONTENT_POLICY },
	{ "550 4.4.7 QUEUE.Expired; message expired", CAT_EXPIRED },
	{ "550 SC-001 (BAY004-MC1F41) Unfortunately, messages from 192.0.2.1 weren't sent. Please contact your Internet service provider. You can tell them that Hotmail does not relay dynamically-assigned IP ranges.", CAT_IP_BLOCK },
	/* Yahoo / AOL */
	{ "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list; see http://postmaster.yahoo.com/errors/550-bl21.html", CAT_IP_BLOCK },
	{ "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", CAT_RATE_LIMITED },
	{ "421 4.7.0 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes", CAT_IP_BLOCK },
	{ "554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com", CAT_INVALID_RECIPIENT },
	{ "421 4.7.1 [TS03] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed.", CAT_IP_BLOCK },
	{ "554 5.7.9 Message not accepted for policy reasons.  See https://help.yahoo.com/kb/postmaster/SLN7305.html", CAT_POLICY_REJECTION },
	{ "554 5.7.1 :(CON:B1) https://postmaster.aol.com/error-codes#554conb1", CAT_IP_BLOCK },
	{ "421 4.7.1 :(DYN:T1) https://postmaster.aol.com/error-codes#421dynt1", CAT_RATE_LIMITED },
	/* Apple, Comcast, GMX/Web.de, Orange, Mail.ru, Yandex, Zoho */
	{ "550 5.7.0 Blocked - see https://support.proofpoint.com/dnsbl-lookup.cgi?ip=192.0.2.1", CAT_IP_BLOCK },
	{ "550 5.1.1 <someone@icloud.com>: user does not exist", CAT_INVALID_RECIPIENT },
	{ "554 resimta-ch2-18v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. Please see http://postmaster.comcast.net/smtp-error-codes.php#BL000000", CAT_IP_BLOCK },
	{ "550 5.1.1 someone@comcast.net Not our Customer", CAT_INVALID_RECIPIENT },
	{ "554-gmx.net (mxgmx) Nemesis ESMTP Service not available 554-No SMTP service 554-Bad DNS PTR resource record. 554 Requested action aborted: bad DNS PTR resource record", CAT_IP_BLOCK },
	{ "550 Requested action not taken: mailbox unavailable", CAT_INVALID_RECIPIENT },
	{ "421 mwinf5c26 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR005_104 [104]", CAT_RATE_LIMITED },
	{ "552 5.1.1 Boite du destinataire pleine. Recipient overquota. OFR_417 [417]", CAT_MAILBOX_FULL },
	{ "550 Message was not accepted -- invalid mailbox.  Local mailbox someone@mail.ru is unavailable: user not found", CAT_INVALID_RECIPIENT },
	{ "550 spam message rejected. Please visit http://help.mail.ru/notspam-support/id?c=abc or report details to abuse@corp.mail.ru. Error code: 123.", CAT_SPAM_CONTENT },
	{ "451 Ratelimit exceeded for mailbox someone@mail.ru. Try again later.", CAT_RATE_LIMITED },
	{ "550 5.7.1 No such user!", CAT_INVALID_RECIPIENT },
	{ "554 5.7.1 [2] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc 1234567890-abcdef", CAT_SPAM_CONTENT },
	{ "550 5.4.6 Unusual sending activity detected. Please try after sometime.", CAT_RATE_LIMITED },
	{ "550 5.1.1 User does not exist - someone@zoho.com", CAT_INVALID_RECIPIENT },
	/* Postfix */
	{ "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in local recipient table", CAT_INVALID_RECIPIENT },
	{ "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in virtual mailbox table", CAT_INVALID_RECIPIENT },
	{ "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]", CAT_IP_BLOCK },
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1", CAT_IP_BLOCK },
	{ "450 4.2.0 <a@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", CAT_GREYLISTING },
	{ "450 4.1.8 <b@example.net>: Sender address rejected: Domain not found", CAT_SENDER_REJECTED },
	{ "450 4.1.2 <a@example.com>: Recipient address rejected: Domain not found", CAT_INVALID_DOMAIN },
	{ "554 5.7.1 <a@example.com>: Relay access denied", CAT_INVALID_DOMAIN },
	{ "552 5.3.4 Message size exceeds fixed limit", CAT_MESSAGE_TOO_LARGE },
	{ "452 4.3.1 Insufficient system storage", CAT_TEMP_SERVER_FAILURE },
	{ "450 4.7.1 <mx.example.org>: Helo command rejected: Host not found", CAT_IP_BLOCK },
	{ "421 4.7.0 mx.example.com Error: too many connections from 192.0.2.1", CAT_RATE_LIMITED },
	{ "451 4.3.0 <a@example.com>: Temporary lookup failure", CAT_TEMP_SERVER_FAILURE },
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using b.barracudacentral.org; http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.1", CAT_IP_BLOCK },
	/* Exim, Sendmail, qmail, Exchange */
	{ "550-Verification failed for <b@example.net> 550-No Such User Here 550 Sender verify failed", CAT_SENDER_REJECTED },
	{ "550 rejected because 192.0.2.1 is in a black list at zen.spamhaus.org", CAT_IP_BLOCK },
	{ "550 Unrouteable address", CAT_INVALID_DOMAIN },
	{ "550 Administrative prohibition", CAT_POLICY_REJECTION },
	{ "451 Temporary local problem - please try later", CAT_TEMP_SERVER_FAILURE },
	{ "553 5.1.8 <b@example.net>... Domain of sender address b@example.net does not exist", CAT_SENDER_REJECTED },
	{ "550 5.1.1 <a@example.com>... User unknown", CAT_INVALID_RECIPIENT },
	{ "554 5.7.1 Rejected 192.0.2.1 found in dnsbl.sorbs.net", CAT_IP_BLOCK },
	{ "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", CAT_INVALID_DOMAIN },
	{ "550 sorry, no mailbox here by that name. (#5.1.1)", CAT_INVALID_RECIPIENT },
	{ "552 sorry, that message size exceeds my databytes limit (#5.3.4)", CAT_MESSAGE_TOO_LARGE },
	{ "451 qq temporary problem (#4.3.0)", CAT_TEMP_SERVER_FAILURE },
	{ "553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)", CAT_SENDER_REJECTED },
	{ "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", CAT_INVALID_RECIPIENT },
	{ "554 5.4.14 Hop count exceeded - possible mail loop", CAT_NETWORK_ERROR },
	{ "530 5.7.0 Must issue a STARTTLS command first", CAT_TLS_FAILURE },
	{ "503 5.5.1 Bad sequence of commands", CAT_PROTOCOL_ERROR },
	{ "451 4.4.0 Primary target IP address responded with: \"421 4.4.2 Connection dropped due to SocketError.\"", CAT_NETWORK_ERROR },
	/* greylisting implementations */
	{ "451 4.7.1 Greylisting in action, please come back later", CAT_GREYLISTING },
	{ "451 4.7.1 Greylisting in action, please come back in 00:05:00", CAT_GREYLISTING },
	{ "451 4.7.1 Try again later", CAT_GREYLISTING },
	{ "451 Temporary failure, please try again later.", CAT_GREYLISTING },
	{ "450 4.7.1 Greylisted for 5 minutes (x)", CAT_GREYLISTING },
	/* DNSBL and virus wordings */
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.spamcop.net; Blocked - see http://www.spamcop.net/bl.shtml?192.0.2.1", CAT_IP_BLOCK },
	{ "550 5.7.1 Your IP 192.0.2.1 is listed at ips.backscatterer.org", CAT_IP_BLOCK },
	{ "554 5.7.1 Rejected: 192.0.2.1 listed in dnsbl-1.uceprotect.net", CAT_IP_BLOCK },
	{ "550 5.7.1 Message rejected: infected with Eicar-Test-Signature virus", CAT_VIRUS_CONTENT },
	{ "550 5.7.1 Your email breaches local URIBL policy.", CAT_SPAM_CONTENT },
	/* never ip_block about one recipient */
	{ "550 5.1.1 <a@example.com> user unknown; your IP is listed at spamhaus", CAT_INVALID_RECIPIENT },
	{ "552 5.2.2 mailbox is stuffed", CAT_MAILBOX_FULL },
};

/*
 * Issues 3 and 4: blocks, greylisting and rate limits, in the wordings of
 * DNS blocklists, the large providers and the common MTAs and greylisting
 * daemons. An ip_block records a block of (source IP, MX IP); a
 * rate_limited reply lowers concurrency; a greylisting reply retries.
 */
static const struct reply_case block_replies[] = {
	/* DNS blocklists */
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using sbl.spamhaus.org; https://www.spamhaus.org/sbl/query/SBL123456", CAT_IP_BLOCK },
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using pbl.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1", CAT_IP_BLOCK },
	{ "550 5.7.1 Rejected because 192.0.2.1 is listed in xbl.spamhaus.org", CAT_IP_BLOCK },
	{ "550 5.7.1 Mail from 192.0.2.1 refused: listed in the Spamhaus ZEN blocklist", CAT_IP_BLOCK },
	{ "554 Service unavailable; Client host [192.0.2.1] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?r=1&ip=192.0.2.1", CAT_IP_BLOCK },
	{ "550 Rejected - 192.0.2.1 listed at b.barracudacentral.org", CAT_IP_BLOCK },
	{ "550 5.7.1 Mail from 192.0.2.1 refused, see http://www.spamcop.net/bl.shtml?192.0.2.1", CAT_IP_BLOCK },
	{ "554 5.7.1 Rejected: IP 192.0.2.1 is listed on bl.spamcop.net", CAT_IP_BLOCK },
	{ "550 5.7.1 Client host [192.0.2.1] blocked using dnsbl.sorbs.net; Currently Sending Spam See: http://www.sorbs.net/lookup.shtml?192.0.2.1", CAT_IP_BLOCK },
	{ "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using dnsbl-2.uceprotect.net; IP 192.0.2.0/24 is UCEPROTECT-Level2 listed", CAT_IP_BLOCK },
	{ "550 Rejected: your network is listed on UCEPROTECT Level 3", CAT_IP_BLOCK },
	{ "550 5.7.1 Message rejected because 192.0.2.1 is listed at psbl.surriel.com", CAT_IP_BLOCK },
	{ "554 5.7.1 Your IP address is listed on an RBL", CAT_IP_BLOCK },
	{ "550 5.7.1 Rejected by RBL: 192.0.2.1", CAT_IP_BLOCK },
	{ "451 4.7.1 Client host [192.0.2.1] blocked using bl.mailspike.net; try again later", CAT_IP_BLOCK },
	{ "550 5.7.1 IP address 192.0.2.1 is listed in cbl.abuseat.org", CAT_IP_BLOCK },
	/* Gmail */
	{ "421-4.7.0 [192.0.2.1] This message is suspicious due to the very low reputation of the sending IP address. To best protect our users from spam, the message has been blocked.", CAT_IP_BLOCK },
	{ "550-5.7.1 [192.0.2.1] The IP you're using to send mail is not authorized to send email directly to our servers. Please use the SMTP relay at your service provider instead.", CAT_IP_BLOCK },
	{ "550-5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. As a policy, Gmail does not accept messages from IPs with missing PTR records.", CAT_IP_BLOCK },
	{ "421-4.7.28 [192.0.2.1] Gmail has detected an unusual rate of mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been rate limited.", CAT_RATE_LIMITED },
	{ "550-5.7.1 [192.0.2.1 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", CAT_SPAM_CONTENT },
	{ "451 4.3.0 Mail server temporarily rejected message.", CAT_TEMP_SERVER_FAILURE },
	/* Microsoft */
	{ "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.", CAT_IP_BLOCK },
	{ "550 5.7.649 Access denied, banned sending IP [192.0.2.1]. To request removal from this list please visit https://sender.office.com/", CAT_IP_BLOCK },
	{ "550 5.7.611 Access denied, banned sending IP [192.0.2.1].", CAT_IP_BLOCK },
	{ "550 5.7.511 Access denied, banned sender[192.0.2.1]. To request removal from this list please forward this message to delist@microsoft.com.", CAT_IP_BLOCK },
	{ "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)", CAT_RATE_LIMITED },
	{ "451 4.7.500 Server busy. Please try again later from [192.0.2.1]. (AS761)", CAT_RATE_LIMITED },
	{ "550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.1 (AS3130).", CAT_IP_BLOCK },
	{ "421 RP-001 (BAY004-MC1F12) Unfortunately, some messages from 192.0.2.1 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.", CAT_RATE_LIMITED },
	{ "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel", CAT_RATE_LIMITED },
	/* Yahoo / AOL */
	{ "553 5.7.1 [BL23] Connections not accepted from IP addresses on Spamhaus XBL; see http://postmaster.yahoo.com/errors/550-bl23.html [550]", CAT_IP_BLOCK },
	{ "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is in Spamhaus's list", CAT_IP_BLOCK },
	{ "554 Message not allowed - [PH01] Email not accepted for policy reasons. Please visit https://postmaster.yahooinc.com/error-codes", CAT_POLICY_REJECTION },
	{ "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to excessive user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", CAT_RATE_LIMITED },
	{ "421 4.7.0 [TS02] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.56.1", CAT_RATE_LIMITED },
	{ "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1", CAT_RATE_LIMITED },
	{ "421 Max message per connection reached, closing transmission channel", CAT_RATE_LIMITED },
	{ "450 User is receiving mail too quickly", CAT_RATE_LIMITED },
	/* Comcast, Apple, GMX / Web.de, Orange, T-Online */
	{ "554 resimta-po-20v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. Please see http://postmaster.comcast.net/smtp-error-codes.php#BL000010", CAT_IP_BLOCK },
	{ "554 resimta-ch2-18v.sys.comcast.net comcast 192.0.2.1 found on one or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes.php#BL000001", CAT_IP_BLOCK },
	{ "421 resimta-h1p-028.sys.comcast.net comcast 192.0.2.1 Too many sessions opened RL000001", CAT_RATE_LIMITED },
	{ "550 5.7.0 Blocked", CAT_IP_BLOCK },
	{ "554-mx.web.de (mxweb109) Nemesis ESMTP Service not available 554-No SMTP service 554-IP address is block listed. 554 For explanation visit https://web.de/email/senderguidelines?ip=192.0.2.1&c=bl", CAT_IP_BLOCK },
	{ "554-gmx.net (mxgmx117) Nemesis ESMTP Service not available 554-No SMTP service 554-IP address is black listed. 554 For explanation visit https://www.gmx.net/mail/senderguidelines?c=bl", CAT_IP_BLOCK },
	{ "550 mwinf5c10 ME Adresse IP source bloquee pour incident de spam. Client host blocked for spamming issues. OFR006_102 Ref http://csi.cloudmark.com/reset-request/?ip=192.0.2.1 [102]", CAT_IP_BLOCK },
	{ "421 mwinf5c79 ME Adresse IP source bloquee temporairement. OFR004_104 [104]", CAT_IP_BLOCK },
	{ "421 mwinf5c21 ME Trop de connexions, veuillez verifier votre configuration. Too many connections, slow down. OFR004_104 [104]", CAT_RATE_LIMITED },
	{ "554 IP=192.0.2.1 - A problem occurred. (Ask your postmaster for help or to contact tosa@rx.t-online.de to clarify.) (BL)", CAT_IP_BLOCK },
	{ "554 mx00.t-online.de Service not available - your IP 192.0.2.1 is blocked", CAT_IP_BLOCK },
	/* Postfix and the sending host's identity */
	{ "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied", CAT_IP_BLOCK },
	{ "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]", CAT_IP_BLOCK },
	{ "550 5.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]", CAT_IP_BLOCK },
	{ "550 5.7.1 Reverse DNS lookup failed for host 192.0.2.1", CAT_IP_BLOCK },
	{ "554 5.7.1 No PTR record found for 192.0.2.1", CAT_IP_BLOCK },
	{ "550 Rejected: rDNS check failed for 192.0.2.1", CAT_IP_BLOCK },
	{ "550 5.7.1 Client IP 192.0.2.1 fails FCrDNS", CAT_IP_BLOCK },
	{ "451 4.7.1 Your IP address has no reverse DNS (rDNS) record; try again later", CAT_IP_BLOCK },
	{ "550 5.7.1 Message rejected due to poor reputation of the sending IP 192.0.2.1", CAT_IP_BLOCK },
	/* refusals at greeting */
	{ "554 mx.example.com ESMTP Service unavailable; Client host [192.0.2.1] blocked", CAT_IP_BLOCK },
	{ "554 Your access to this mail system has been rejected due to the sending MTA's poor reputation. If you believe that this failure is in error, please contact the intended recipient via alternate means.", CAT_IP_BLOCK },
	{ "554 Your access to this mail system has been rejected", CAT_IP_BLOCK },
	{ "421 4.7.0 mx.example.com Error: too many connections from your IP 192.0.2.1", CAT_RATE_LIMITED },
	{ "421 Too many concurrent SMTP connections from this IP address; please try again later.", CAT_RATE_LIMITED },
	/* greylisting */
	{ "450 4.2.0 <a@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", CAT_GREYLISTING },
	{ "451 4.7.1 Greylisting in action, please come back later", CAT_GREYLISTING },
	{ "451 Greylisted - try again later", CAT_GREYLISTING },
	{ "451 Please try again later", CAT_GREYLISTING },
	{ "450 4.7.1 <a@example.com>: Recipient address rejected: Greylisted for 300 seconds", CAT_GREYLISTING },
	{ "451 4.7.1 Greylisted for 5 minutes (sqlgrey)", CAT_GREYLISTING },
	{ "451 4.7.1 <a@example.com>: Recipient address rejected: policyd-weight: greylisted, please try again later", CAT_GREYLISTING },
	/* rate limits */
	{ "452 4.5.3 Too many messages, slow down", CAT_RATE_LIMITED },
	{ "450 4.7.1 Too many messages from 192.0.2.1 in the last hour", CAT_RATE_LIMITED },
	{ "421 4.4.5 Throttled: too many connections from your network", CAT_RATE_LIMITED },
	{ "451 4.7.1 You have exceeded the maximum number of messages per hour", CAT_RATE_LIMITED },
	{ "450 4.7.1 Rate limit exceeded, try again later", CAT_RATE_LIMITED },
	{ "451 4.7.1 Try again later: rate of messages from your IP is too high", CAT_RATE_LIMITED },
	{ "421 4.7.0 Please slow down and try again later", CAT_RATE_LIMITED },
	{ "451 4.7.1 Message rate exceeded for 192.0.2.1, try again later", CAT_RATE_LIMITED },
};

/*
 * A reply about one recipient is never a block, whatever else it says: the
 * recipient's category wins, and an X.1.* / X.2.* status is never ip_block.
 */
static const struct reply_case recipient_replies[] = {
	{ "550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in local recipient table", CAT_INVALID_RECIPIENT },
	{ "550 5.1.1 User unknown - your IP 192.0.2.1 is listed in bl.spamcop.net", CAT_INVALID_RECIPIENT },
	{ "452 4.2.2 Mailbox full, sending IP blocked", CAT_MAILBOX_FULL },
	{ "552 5.2.2 <a@example.com>: mailbox full; client host rejected", CAT_MAILBOX_FULL },
	{ "550 5.2.1 Mailbox disabled; poor reputation", CAT_MAILBOX_INACTIVE },
	{ "550 5.1.1 <a@example.com>: Recipient address rejected: blocked using zen.spamhaus.org", CAT_INVALID_RECIPIENT },
	{ "550 5.1.10 RESOLVER.ADR.RecipientNotFound; banned sending IP", CAT_INVALID_RECIPIENT },
	{ "550 <a@example.com>: Recipient address rejected: User unknown; Client host [192.0.2.1] blocked using zen.spamhaus.org", CAT_INVALID_RECIPIENT },
	{ "550 Mailbox quota exceeded for a@example.com (RBL)", CAT_MAILBOX_FULL },
	{ "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException", CAT_MAILBOX_FULL },
};

static void
check_table(const struct reply_case *v, size_t n, const char *what)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		enum reply_category got = classify_line(rules, v[i].line);

		if (got != v[i].want) {
			print_message("%s %zu: got %s want %s: %s\n", what, i,
			    classify_category_name(got),
			    classify_category_name(v[i].want), v[i].line);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void
test_block_replies(void **state)
{
	(void)state;
	check_table(block_replies, sizeof(block_replies) / sizeof(block_replies[0]),
	    "block");
}

static void
test_recipient_never_block(void **state)
{
	(void)state;
	check_table(recipient_replies,
	    sizeof(recipient_replies) / sizeof(recipient_replies[0]), "recipient");
	/* And never block, whatever the category: with 4xx and 5xx. */
	for (size_t i = 0; i < sizeof(recipient_replies) /
	    sizeof(recipient_replies[0]); i++)
		assert_int_not_equal(classify_action(classify_line(rules,
		    recipient_replies[i].line), 550), ACTION_BLOCK);
}

static void
test_replies(void **state)
{
	size_t bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		enum reply_category got = classify_line(rules, replies[i].line);
		if (got != replies[i].want) {
			print_message("case %zu: got %s want %s: %s\n", i,
			    classify_category_name(got),
			    classify_category_name(replies[i].want), replies[i].line);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

struct action_case {
	enum reply_category cat;
	int code;
	enum reply_action want;
};

static const struct action_case actions[] = {
	{ CAT_UNKNOWN, 250, ACTION_DELIVER },
	{ CAT_INVALID_RECIPIENT, 250, ACTION_DELIVER },
	{ CAT_INVALID_RECIPIENT, 550, ACTION_HARD_BOUNCE },
	{ CAT_INVALID_RECIPIENT, 450, ACTION_RETRY },
	{ CAT_INVALID_RECIPIENT, 0, ACTION_HARD_BOUNCE },
	{ CAT_MAILBOX_FULL, 452, ACTION_RETRY },
	{ CAT_MAILBOX_FULL, 552, ACTION_HARD_BOUNCE },
	{ CAT_SPAM_CONTENT, 550, ACTION_HARD_BOUNCE },
	{ CAT_GREYLISTING, 451, ACTION_GREYLIST },
	{ CAT_RATE_LIMITED, 421, ACTION_RATE_LIMIT },
	{ CAT_RATE_LIMITED, 550, ACTION_RATE_LIMIT },
	{ CAT_IP_BLOCK, 554, ACTION_BLOCK },
	{ CAT_IP_BLOCK, 421, ACTION_BLOCK },
	{ CAT_TEMP_SERVER_FAILURE, 451, ACTION_RETRY },
	{ CAT_NETWORK_ERROR, 0, ACTION_RETRY },
	{ CAT_PROTOCOL_ERROR, 503, ACTION_RETRY },
	{ CAT_TLS_FAILURE, 530, ACTION_RETRY },
	{ CAT_EXPIRED, 0, ACTION_HARD_BOUNCE },
	{ CAT_EXPIRED, 451, ACTION_RETRY },
	{ CAT_UNKNOWN, 550, ACTION_HARD_BOUNCE },
	{ CAT_UNKNOWN, 450, ACTION_RETRY },
	{ CAT_UNKNOWN, 0, ACTION_RETRY },
	{ CAT_UNKNOWN, 352, ACTION_RETRY },
	{ CAT_RELAY_DENIED, 554, ACTION_HARD_BOUNCE },
	{ CAT_AUTH_FAILURE, 550, ACTION_HARD_BOUNCE },
};

static void
test_actions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		enum reply_action got = classify_action(actions[i].cat, actions[i].code);
		if (got != actions[i].want)
			fail_msg("case %zu: %s %d: got %s want %s", i,
			    classify_category_name(actions[i].cat), actions[i].code,
			    classify_action_name(got),
			    classify_action_name(actions[i].want));
	}
}

static void
test_names(void **state)
{
	(void)state;
	for (int i = 0; i < CAT_COUNT; i++)
		assert_int_equal(classify_category_parse(classify_category_name(i)), i);
	for (int i = 0; i < ACTION_COUNT; i++)
		assert_int_equal(classify_action_parse(classify_action_name(i)), i);
	assert_string_equal(classify_category_name(CAT_IP_BLOCK), "ip_block");
	assert_string_equal(classify_action_name(ACTION_GREYLIST), "greylist_retry");
	assert_string_equal(classify_category_name((enum reply_category)999), "unknown");
	assert_int_equal(classify_category_parse("nonsense"), -1);
	assert_int_equal(classify_category_parse(NULL), -1);
	assert_int_equal(classify_action_parse("bounce"), -1);
}

struct code_case {
	int code;
	const char *enhanced;
	enum reply_category want;
};

static const struct code_case code_cases[] = {
	{ 550, "5.1.1", CAT_INVALID_RECIPIENT },
	{ 550, "5.1.2", CAT_INVALID_DOMAIN },
	{ 550, "5.1.10", CAT_INVALID_DOMAIN },
	{ 550, "5.2.1", CAT_MAILBOX_INACTIVE },
	{ 452, "4.2.2", CAT_MAILBOX_FULL },
	{ 552, "5.3.4", CAT_MESSAGE_TOO_LARGE },
	{ 550, "5.7.1", CAT_POLICY_REJECTION },
	{ 451, "4.7.1", CAT_POLICY_REJECTION },
	{ 550, "5.7.26", CAT_AUTH_FAILURE },
	{ 525, "4.7.13", CAT_MAILBOX_INACTIVE },
	{ 451, "4.4.1", CAT_NETWORK_ERROR },
	{ 550, "5.4.4", CAT_INVALID_DOMAIN },
	{ 451, "4.4.7", CAT_EXPIRED },
	{ 451, "4.3.0", CAT_TEMP_SERVER_FAILURE },
	{ 452, "4.5.3", CAT_RATE_LIMITED },
	{ 550, "5.7.606", CAT_IP_BLOCK },
	{ 451, "4.7.500", CAT_RATE_LIMITED },
	{ 553, "5.1.8", CAT_SENDER_REJECTED },
	{ 550, "5.0.0", CAT_UNKNOWN },
	{ 552, NULL, CAT_MAILBOX_FULL },
	{ 421, NULL, CAT_TEMP_SERVER_FAILURE },
	{ 503, NULL, CAT_PROTOCOL_ERROR },
	{ 556, NULL, CAT_INVALID_DOMAIN },
	{ 550, NULL, CAT_UNKNOWN },
	{ 554, "", CAT_UNKNOWN },
	{ 0, "5.1.1", CAT_INVALID_RECIPIENT },  /* a DSN status alone */
	{ 250, "2.0.0", CAT_UNKNOWN },
	{ 352, "5.2.2", CAT_UNKNOWN },           /* not a failure code */
	{ 0, NULL, CAT_UNKNOWN },
};

static void
test_code_fallbacks(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(code_cases) / sizeof(code_cases[0]); i++) {
		/* text that matches no rule */
		enum reply_category got = classify_reply(rules, code_cases[i].code,
		    code_cases[i].enhanced, "xyzzy");
		if (got != code_cases[i].want)
			fail_msg("case %zu: %d %s: got %s want %s", i, code_cases[i].code,
			    code_cases[i].enhanced ? code_cases[i].enhanced : "-",
			    classify_category_name(got),
			    classify_category_name(code_cases[i].want));
		/* NULL rules: the same fallbacks */
		assert_int_equal(classify_reply(NULL, code_cases[i].code,
		    code_cases[i].enhanced, "xyzzy"), code_cases[i].want);
	}
}

static void
test_garbage(void **state)
{
	static const char *const garbage[] = {
		"", "   ", "\x01\x02\xff\xfe", "5", "55", "5555 x",
		"abc 5.1.1.1.1", "999 9.9.9", "-550", "550-", "\t\t550\t",
		"5.", "5.1.", "5.1.1.2 is an IP", "((((((", "[[[[", "\\",
	};
	char big[CLASSIFY_TEXT_MAX * 2 + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		enum reply_category c = classify_line(rules, garbage[i]);
		if (c != CAT_UNKNOWN)
			fail_msg("'%s' gave %s", garbage[i], classify_category_name(c));
	}
	assert_int_equal(classify_reply(rules, 0, NULL, NULL), CAT_UNKNOWN);
	assert_int_equal(classify_reply(rules, 550, "nonsense", NULL), CAT_UNKNOWN);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + sizeof(big) - 20, "user unknown", 12);
	/* past CLASSIFY_TEXT_MAX is not looked at */
	assert_int_equal(classify_reply(rules, 550, NULL, big), CAT_UNKNOWN);
	memcpy(big + 10, "user unknown", 12);
	assert_int_equal(classify_reply(rules, 550, NULL, big), CAT_INVALID_RECIPIENT);
}

static void
test_parse_line(void **state)
{
	char enh[CLASSIFY_ENHANCED_MAX];
	const char *text;
	int code;

	(void)state;
	classify_parse_line("550-5.1.1 The email", &code, enh, &text);
	assert_int_equal(code, 550);
	assert_string_equal(enh, "5.1.1");
	assert_string_equal(text, "The email");
	classify_parse_line("421 4.7.0 [TSS04] x", &code, enh, &text);
	assert_int_equal(code, 421);
	assert_string_equal(enh, "4.7.0");
	assert_string_equal(text, "[TSS04] x");
	classify_parse_line("554 delivery error", &code, enh, &text);
	assert_int_equal(code, 554);
	assert_string_equal(enh, "");
	assert_string_equal(text, "delivery error");
	classify_parse_line("5.1.1 no code", &code, enh, &text);
	assert_int_equal(code, 0);
	assert_string_equal(enh, "5.1.1");
	classify_parse_line("5501 x", &code, enh, &text);
	assert_int_equal(code, 0);
	assert_string_equal(text, "5501 x");
	classify_parse_line("550 5.1.1.7 x", &code, enh, &text);
	assert_int_equal(code, 550);
	assert_string_equal(enh, "");
	/* a status found inside the text ("(#5.1.1)") */
	assert_int_equal(classify_reply(rules, 550, NULL, "sorry (#5.1.1)"),
	    CAT_INVALID_RECIPIENT);
	assert_int_equal(classify_reply(rules, 550, NULL, "host 5.1.1.1 xyzzy"),
	    CAT_UNKNOWN);
}

static void
test_operator_rules(void **state)
{
	struct classify_rules *r = classify_rules_new();
	struct classify_rules *e = classify_rules_new_empty();
	char err[256];
	size_t n = classify_rules_count(r);

	(void)state;
	assert_true(n >= 200);
	/* An override beats the shipped wording. */
	assert_int_equal(classify_line(r, "550 5.1.1 user unknown"), CAT_INVALID_RECIPIENT);
	assert_int_equal(classify_rules_add(r, "55x", "x.1", "user unknown",
	    "policy_rejection", err, sizeof(err)), 0);
	assert_int_equal(classify_rules_count(r), n + 1);
	assert_int_equal(classify_line(r, "550 5.1.1 user unknown"), CAT_POLICY_REJECTION);
	assert_int_equal(classify_line(r, "450 4.1.1 user unknown"), CAT_INVALID_RECIPIENT);
	/* Code-only override */
	assert_int_equal(classify_rules_add(e, "421", "*", NULL, "rate_limited",
	    err, sizeof(err)), 0);
	assert_int_equal(classify_line(e, "421 xyzzy"), CAT_RATE_LIMITED);
	assert_int_equal(classify_line(e, "451 xyzzy"), CAT_TEMP_SERVER_FAILURE);
	/* Status ranges */
	assert_int_equal(classify_rules_add(e, "*", "x.7.900-910", "", "ip_block",
	    err, sizeof(err)), 0);
	assert_int_equal(classify_line(e, "550 5.7.905 x"), CAT_IP_BLOCK);
	assert_int_equal(classify_line(e, "550 5.7.911 x"), CAT_POLICY_REJECTION);
	/* Errors */
	assert_int_equal(classify_rules_add(e, "*", "*", "x", "nope", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown category 'nope'");
	assert_int_equal(classify_rules_add(e, "6xx", "*", "x", "unknown", err, sizeof(err)), -1);
	assert_int_equal(classify_rules_add(e, "x50", "*", "x", "unknown", err, sizeof(err)), -1);
	assert_int_equal(classify_rules_add(e, "5x0", "*", "x", "unknown", err, sizeof(err)), -1);
	assert_int_equal(classify_rules_add(e, "550,551,552,553,554", "*", "x", "unknown", err, sizeof(err)), -1);
	assert_int_equal(classify_rules_add(e, "*", "3.1.1", "x", "unknown", err, sizeof(err)), -1);
	assert_int_equal(classify_rules_add(e, "*", "x.7.9-1", "x", "unknown", err, sizeof(err)), -1);
	assert_int_equal(classify_rules_add(e, "*", "*", "(unclosed", "unknown", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad pattern"));
	assert_int_equal(classify_rules_count(e), 2);
	classify_rules_free(r);
	classify_rules_free(e);
	classify_rules_free(NULL);
}

/* Not an assertion: how the shipped rules do on the shared dev set. */
static void
test_dev_accuracy(void **state)
{
	const char *src = getenv("SLUICE_SOURCE_DIR");
	char path[4096], line[8192];
	size_t total = 0, right = 0;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/../shared/data/replies-dev.tsv",
	    src ? src : "/work/main");
	f = fopen(path, "r");
	if (f == NULL) {
		print_message("skipped: %s not found\n", path);
		skip();
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *tab = strchr(line, '\t'), *reply, *end;
		enum reply_category got;

		if (tab == NULL || strncmp(line, "category\t", 9) == 0)
			continue;
		*tab = '\0';
		reply = tab + 1;
		end = strchr(reply, '\t');
		if (end)
			*end = '\0';
		got = classify_line(rules, reply);
		total++;
		if (strcmp(classify_category_name(got), line) == 0)
			right++;
		else if (getenv("SLUICE_CLASSIFY_VERBOSE"))
			print_message("MISS want=%s got=%s %s\n", line,
			    classify_category_name(got), reply);
	}
	fclose(f);
	print_message("replies-dev accuracy: %zu/%zu (%.1f%%)\n", right, total,
	    total ? 100.0 * (double)right / (double)total : 0.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_block_replies),
		cmocka_unit_test(test_recipient_never_block),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_code_fallbacks),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_operator_rules),
		cmocka_unit_test(test_dev_accuracy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
