"""Call channels: how the engine talks to a telephony platform (FreeSWITCH ESL in `esl`)."""
