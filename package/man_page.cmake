# Writes PAGE, the man page of PROGRAM, with help2man: its --help and --version, the
# sections of man/<program>.h2m, and for the exobus tool each subcommand's --help.
get_filename_component(name ${PROGRAM} NAME)
set(include_file ${PAGE}.h2m)
file(READ ${CMAKE_CURRENT_LIST_DIR}/man/${name}.h2m sections)
if(name STREQUAL "exobus")
  foreach(subcommand lint status top tail send dlq)
    execute_process(COMMAND ${PROGRAM} ${subcommand} --help OUTPUT_VARIABLE help RESULT_VARIABLE status)
    if(NOT status EQUAL 0)
      message(FATAL_ERROR "${PROGRAM} ${subcommand} --help failed")
    endif()
    string(TOUPPER ${subcommand} section)
    string(REPLACE "${PROGRAM}" "${name}" help "${help}")
    string(REPLACE "\\" "\\\\" help "${help}")
    string(APPEND sections "\n[COMMAND ${section}]\n.nf\n${help}\n.fi\n")
  endforeach()
endif()
file(WRITE ${include_file} "${sections}")
execute_process(COMMAND ${HELP2MAN} --no-info --no-discard-stderr --include=${include_file} --output=${PAGE}
                        ${PROGRAM}
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "help2man failed for ${PROGRAM}")
endif()
