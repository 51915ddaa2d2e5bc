package redisring

import "github.com/hallpass/hallpass/keys"

// SealPlaintextRing stores r as an authentic document whose secrets are
// plaintext k4.secret, as a buggy or hostile writer holding the wrapping
// key might; Load must still refuse it.
func SealPlaintextRing(s *Store, r *keys.Ring) (string, error) {
	d := document{Kind: kindRing, Version: 1}
	for _, e := range r.Entries() {
		d.Keys = append(d.Keys, entry{Kid: e.ID(), Status: e.Status, Public: e.Public.PASERK(),
			Secret: e.Secret.PlaintextPASERK(), Created: e.Created})
	}
	return s.seal(&d)
}

// DecodeRing and DecodeLocal expose the parsers of stored values to the
// fuzz test.
func DecodeRing(s *Store, val string) (*keys.Ring, error) { return s.decodeRing(val, true) }
func DecodeLocal(s *Store, val string) ([]keys.LocalKeyEntry, error) {
	return s.decodeLocal(val, kindLocal)
}

// DecodeHead exposes the head's parser to the fuzz test: the versions it
// names, or an error.
func DecodeHead(s *Store, val string) (map[string]uint64, error) {
	h, err := s.openHead(val)
	if err != nil {
		return nil, err
	}
	return h.Docs, nil
}

// SealRing stores r as an authentic ring document at version, with every
// secret wrapped, as a writer holding the wrapping key would (a node
// restored from an old backup, or a buggy one); SealHead stores the head
// naming docs at version.
func SealRing(s *Store, r *keys.Ring, version uint64) (string, error) {
	return s.encodeRing(r, version)
}

func SealHead(s *Store, version uint64, docs map[string]uint64) (string, error) {
	return s.sealRaw(&headDoc{Format: formatV1, Kind: kindHead, Version: version, Docs: docs})
}
