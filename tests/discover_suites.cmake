# Registers one ctest test per gtest suite of a test executable (run after it is built, like
# GoogleTest's gtest_discover_tests, which registers one per test). A suite's tests then share one
# process: starting a libtorch process costs about a second here, more than most unit tests.
#   cmake -D TEST_EXECUTABLE=... -D CTEST_FILE=... -D LABEL=unit -D TIMEOUT=120 -D WORKING_DIR=... -P discover_suites.cmake
execute_process(COMMAND "${TEST_EXECUTABLE}" --gtest_list_tests
                OUTPUT_VARIABLE listing RESULT_VARIABLE rc TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed (${rc}):\n${listing}")
endif()
# Suite lines start in column 0 and end with '.' (test lines are indented; gtest_main's
# "Running main() from ..." line has no '.' at its end).
string(REPLACE "\n" ";" lines "${listing}")
set(script "")
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^[^ ].*\\.$")
    continue()
  endif()
  string(REGEX REPLACE "\\.$" "" suite "${line}")
  string(APPEND script
    "add_test([==[${suite}]==] [==[${TEST_EXECUTABLE}]==] [==[--gtest_filter=${suite}.*]==])\n"
    "set_tests_properties([==[${suite}]==] PROPERTIES LABELS ${LABEL} TIMEOUT ${TIMEOUT} WORKING_DIRECTORY [==[${WORKING_DIR}]==])\n")
endforeach()
file(WRITE "${CTEST_FILE}" "${script}")
