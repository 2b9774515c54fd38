module websentry.invalid/goprober

go 1.22
