# `sam build` (template.yaml: BuildMethod makefile) runs `make build-<LogicalId>` with this file
# as functions/<package>/Makefile (a link to it). The package is that folder's name; the
# build happens in the repository, by scripts/build-lambda.sh.
HERE := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PACKAGE := $(notdir $(patsubst %/,%,$(HERE)))

build-%:
	"$(HERE)../../scripts/build-lambda.sh" "$(PACKAGE)" "$(ARTIFACTS_DIR)"
