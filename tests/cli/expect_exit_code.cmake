# Runs COMMAND (a ;-list) and fails unless it exits with EXPECTED and, if given, its
# standard output contains OUTPUT_CONTAINS.
# cmake -DCOMMAND=... -DEXPECTED=... [-DOUTPUT_CONTAINS=...] -P expect_exit_code.cmake
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code STREQUAL EXPECTED)
  message(FATAL_ERROR "exit code ${code}, expected ${EXPECTED}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(DEFINED OUTPUT_CONTAINS)
  string(FIND "${out}${err}" "${OUTPUT_CONTAINS}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "output lacks '${OUTPUT_CONTAINS}'\nstdout:\n${out}\nstderr:\n${err}")
  endif()
endif()
