"""A stand-in for TikTok Shop: the Open API's contract (signatures, errors, rate limits), OAuth, webhook pushes."""
