# bash completion for banyan(1). Verbs, options and ctl commands are read
# from the binary's --help, so they follow the binary; VM names from
# `banyan ls -q` where the binary has it.

_banyan_help_options()
{
	"$1" "$2" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

_banyan_vm_names()
{
	"$1" ls -q 2>/dev/null
}

_banyan()
{
	local cur prev verb i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	verb=${COMP_WORDS[1]:-}

	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$("$1" --help 2>/dev/null |
			sed -n '/^commands:/,/^Run/p' | awk '/^  [a-z]/ {print $1}')
			--help --version" -- "$cur"))
		return
	fi
	case "$prev" in
	--name)
		COMPREPLY=($(compgen -W "$(_banyan_vm_names "$1")" -- "$cur"))
		return ;;
	--api-socket | --config | --kernel | --initrd | --log-file | --snapshot | \
	--store | --console | --exec-file | --chroot-base | --netns | --clone-api-socket)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--log-level)
		COMPREPLY=($(compgen -W "error warn info debug" -- "$cur"))
		return ;;
	--log-format)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return ;;
	--seccomp)
		COMPREPLY=($(compgen -W "strict log off" -- "$cur"))
		return ;;
	--on-reboot)
		COMPREPLY=($(compgen -W "exit restart" -- "$cur"))
		return ;;
	esac
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "$(_banyan_help_options "$1" "$verb")" -- "$cur"))
		return
	fi
	case "$verb" in
	ctl)
		# The command: unless one is already given.
		for ((i = 2; i < COMP_CWORD; i++)); do
			[[ "${COMP_WORDS[i]}" == -* || "${COMP_WORDS[i - 1]}" == --* ]] && continue
			COMPREPLY=($(compgen -f -- "$cur"))
			return
		done
		COMPREPLY=($(compgen -W "$("$1" ctl --help 2>/dev/null |
			sed -n '/^commands:/,/^Exit/p' | awk '/^  [a-z]/ {print $1}' | sort -u)" \
			-- "$cur"))
		;;
	snapshot)
		COMPREPLY=($(compgen -W "list tree show verify delete" -- "$cur"))
		;;
	*)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	esac
}
complete -F _banyan banyan
