// Names of the files the single binary carries as SEA assets (scripts/build-binary.ts puts them
// in; the code that needs them reads them with node:sea getAsset when isSea()).

/** The UMD bundle of @simplewebauthn/browser, served to the WebAuthn pages (src/oauth/mfa.ts). */
export const SIMPLEWEBAUTHN_BROWSER_ASSET = 'simplewebauthn-browser.umd.min.js';
