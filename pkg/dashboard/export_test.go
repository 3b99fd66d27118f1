package dashboard

// TokenIssuer lets the external tests forge tokens with the issuer a real
// one names, without a second copy of the JWT parsing.
var TokenIssuer = tokenIssuer
