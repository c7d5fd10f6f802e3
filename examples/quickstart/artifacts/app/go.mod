module quickstart

go 1.22
