# e2c — build, test and check.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s

AGENT_ARCHS ?= arm64 arm

.PHONY: build agents test test-images example-mqtt lint ansible-diff bench bench-ansible fuzz clean

# Static (CGO_ENABLED=0): the agent e2c copies to the hosts runs whatever
# their C library. e2c-agent is stripped (-s -w: stack traces keep their
# function names): each host's first connection copies it.
build: ## e2c and its agent for this machine's hosts in ./bin
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/e2c ./cmd/e2c
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o bin/e2c-agent ./cmd/e2c-agent

agents: build ## the agent for other hosts' architectures beside bin/e2c (bin/e2c-agent-linux-arm64, -arm: Raspberry Pi)
	for a in $(AGENT_ARCHS); do CGO_ENABLED=0 GOOS=linux GOARCH=$$a GOARM=6 $(GO) build -ldflags "-s -w" -o bin/e2c-agent-linux-$$a ./cmd/e2c-agent || exit 1; done

test: ## every test, with the race detector
	$(GO) test -race -count=1 -timeout 25m ./...

test-images: ## the container tests' images, built from Debian's packages (root; about 80 s, then cached in /var/cache/e2c-test-images)
	bash engine/containers/testdata/build-image.sh mosquitto
	bash engine/containers/testdata/build-image.sh zookeeper

# The Debian-built broker stands in for eclipse-mosquitto (same command and
# configuration paths); delay and loss only where the kernel has sch_netem.
example-mqtt: build ## the MQTT example on emulated hosts with their own Docker (root; docker.io, debootstrap, mosquitto-clients)
	mkdir -p examples/mqtt/artifacts/images
	cp $$(bash engine/containers/testdata/build-image.sh mosquitto) examples/mqtt/artifacts/images/mosquitto.tar
	./bin/e2c deploy examples/mqtt examples/mqtt/artifacts --duration 15 --destroy \
	  $$( { [ -e /sys/module/sch_netem ] || ls /lib/modules/$$(uname -r)/kernel/net/sched/sch_netem* ; } >/dev/null 2>&1 || echo --network rates-only)

# In its own folder, so that go test prints the table even when every case
# gives the same results.
ansible-diff: ## the differential suite alone: every case run by ansible-playbook and by e2c, compared (root; 2 minutes)
	cd engine/ansiblediff && $(GO) test -count=1 -run '^TestSameAsAnsible$$'

lint: ## formatting and vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## benchmarks, with memory (bench-ansible runs the long comparison)
	$(GO) test -run='^$$' -bench=. -skip=VersusAnsible -benchmem ./...

bench-ansible: ## e2c against tuned Ansible and plain OpenSSH on 8, 32, 64 emulated hosts (root; minutes)
	$(GO) test -run='^$$' -bench=VersusAnsible -benchtime=1x -timeout 90m ./engine/experiment

fuzz: ## a short run of every fuzz target
	$(GO) test -run='^$$' -fuzz=FuzzDecodeLayersServices -fuzztime=$(FUZZTIME) ./schema
	$(GO) test -run='^$$' -fuzz=FuzzDecodeNetwork -fuzztime=$(FUZZTIME) ./schema
	$(GO) test -run='^$$' -fuzz=FuzzDecodeWorkflow -fuzztime=$(FUZZTIME) ./schema
	$(GO) test -run='^$$' -fuzz=FuzzRender -fuzztime=$(FUZZTIME) ./engine/tmpl
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./engine/pattern

clean:
	rm -rf bin
