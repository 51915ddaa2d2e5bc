package remotekeys

// CheckOwner is checkOwner, for the table test of its verdicts (a test
// cannot make a file owned by another user unless it runs as root).
var CheckOwner = checkOwner
