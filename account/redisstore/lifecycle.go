package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/hallpass/hallpass/account"
)

var errTODO = errors.New("redisstore: not implemented yet")

func (s *Store) CreateLinkCode(ctx context.Context, lc account.LinkCode, maxLive int, now time.Time) error {
	return errTODO
}
func (s *Store) CountLinkCodes(ctx context.Context, accountID string, now time.Time) (int, error) {
	return 0, errTODO
}
func (s *Store) RedeemLinkCode(ctx context.Context, digest []byte, now time.Time, dev account.Device, sess account.Session) (account.Account, error) {
	return account.Account{}, errTODO
}
func (s *Store) SetRecoveryCodes(ctx context.Context, accountID string, salt []byte, digests [][]byte) error {
	return errTODO
}
func (s *Store) AddRecoveryCode(ctx context.Context, accountID string, salt, digest []byte, maxCodes int) error {
	return errTODO
}
func (s *Store) UseRecoveryCode(ctx context.Context, accountID string, digest []byte, dev account.Device, sess account.Session, signOutOthers bool, now time.Time) ([]string, error) {
	return nil, errTODO
}
func (s *Store) EndAccountSessions(ctx context.Context, accountID string, at time.Time) ([]string, error) {
	return nil, errTODO
}
func (s *Store) DeleteAccount(ctx context.Context, accountID string, now, holdUntil time.Time) error {
	return errTODO
}
func (s *Store) RenameAccount(ctx context.Context, accountID, newDisplay, newKey string, now, holdUntil time.Time) error {
	return errTODO
}
