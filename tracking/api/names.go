package api

import (
	"math/rand/v2"
	"strconv"
)

// Word lists for generated run names ("<adjective>-<noun>-<0..999>"). They
// are this project's own; every word is at most 7 letters so a name never
// exceeds 20 characters, like MLflow's.
var (
	nameAdjectives = []string{
		"able", "agile", "amber", "ample", "azure", "bold", "brave", "brisk", "calm", "caring",
		"civic", "clean", "clever", "cosmic", "crisp", "daring", "deft", "eager", "early", "easy",
		"fair", "fancy", "fast", "fierce", "fluffy", "fond", "frank", "fresh", "gentle", "glad",
		"golden", "grand", "green", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind",
		"lively", "loyal", "lucid", "lucky", "merry", "mighty", "modest", "neat", "nimble", "noble",
		"patient", "placid", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "regal",
		"robust", "rustic", "serene", "sharp", "shiny", "silent", "silver", "sleek", "smart", "snappy",
		"solid", "spry", "stable", "steady", "stellar", "sturdy", "sunny", "swift", "tidy", "tender",
		"upbeat", "valiant", "vivid", "warm", "wise", "witty", "zesty",
	}
	nameNouns = []string{
		"ant", "ape", "badger", "bass", "bat", "bear", "bee", "bird", "bison", "boar",
		"carp", "cat", "cod", "colt", "crab", "crane", "crow", "deer", "doe", "dove",
		"duck", "eagle", "eel", "elk", "falcon", "finch", "fish", "fox", "frog", "gnat",
		"goat", "goose", "grouse", "gull", "hare", "hawk", "hen", "heron", "horse", "ibis",
		"jay", "koala", "lark", "lemur", "lion", "lynx", "mole", "moose", "moth", "mouse",
		"newt", "otter", "owl", "ox", "panda", "perch", "pig", "pike", "puma", "quail",
		"rabbit", "ram", "raven", "robin", "seal", "shark", "sheep", "shrew", "skunk", "sloth",
		"snail", "snake", "sow", "squid", "stag", "stork", "swan", "tapir", "tern", "tiger",
		"toad", "trout", "tuna", "vole", "wasp", "whale", "wolf", "wren", "yak", "zebra",
	}
)

// generateRunName returns a random run name such as "brisk-otter-417".
func generateRunName() string {
	a := nameAdjectives[rand.IntN(len(nameAdjectives))]
	n := nameNouns[rand.IntN(len(nameNouns))]
	return a + "-" + n + "-" + strconv.Itoa(rand.IntN(1000))
}
