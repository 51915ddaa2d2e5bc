package redisstore

// NameTag is the tag of a username key's name record.
var NameTag = nameTag
